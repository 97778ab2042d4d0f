"""The Whisper engine: decode, find speech, batch windows through the model, build results."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from whisper_engine.audio import SAMPLE_RATE, AudioSource, decode_audio, duration_of
from whisper_engine.decoding import DecodeOptions, WindowDecoding, decode_windows
from whisper_engine.errors import TranscriptionError, UnsupportedLanguageError
from whisper_engine.model import LoadedWhisper, load_whisper, release
from whisper_engine.results import Segment, Timings, TranscriptionResult
from whisper_engine.safeguards import compression_ratio
from whisper_engine.tokens import TIME_PRECISION_S
from whisper_engine.vad import SileroVad, VadOptions
from whisper_engine.windows import Span, plan_windows

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

AUTO_LANGUAGE = "auto"
# Follow-up passes for windows Whisper left unfinished; each pass strictly advances.
_MAX_PASSES = 4
_MIN_FOLLOW_UP_SPEECH_S = 0.3


@dataclass(frozen=True)
class EngineOptions:
    """Tuning of the engine; the defaults follow Whisper's reference thresholds."""

    default_language: str = "sv"
    batch_size: int | None = None  # None: 16 on CUDA, 4 on CPU
    use_vad: bool = True
    vad: VadOptions = field(default_factory=VadOptions)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4


@dataclass
class _Window:
    audio_index: int
    span: Span
    language: str | None
    decoding: WindowDecoding | None = None


class WhisperEngine:
    """A Whisper model loaded once, transcribing 16 kHz audio in batches of VAD windows.

    Inference is serialised by a lock: the server and the worker call it from one worker thread,
    and the lock keeps a stray second caller from interleaving with the decoder's cache.
    """

    def __init__(
        self, loaded: LoadedWhisper, vad: SileroVad | None, options: EngineOptions
    ) -> None:
        self._loaded: LoadedWhisper | None = loaded
        self._vad = vad
        self.options = options
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_id_or_dir: str | os.PathLike[str],
        *,
        device: str = "auto",
        options: EngineOptions | None = None,
    ) -> WhisperEngine:
        """Load the model (offline) and the VAD; the load time is logged."""
        opts = options or EngineOptions()
        loaded = load_whisper(model_id_or_dir, device=device)
        vad = SileroVad.load(opts.vad) if opts.use_vad else None
        return cls(loaded, vad, opts)

    @property
    def loaded(self) -> LoadedWhisper:
        if self._loaded is None:
            raise TranscriptionError("the model has been unloaded")
        return self._loaded

    @property
    def model_name(self) -> str:
        return self.loaded.name

    @property
    def device(self) -> str:
        return self.loaded.device

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def unload(self) -> None:
        """Free the model; GPU memory is handed back to the driver."""
        with self._lock:
            if self._loaded is not None:
                release(self._loaded)
                self._loaded = None

    def transcribe(
        self,
        audio: AudioSource | NDArray[np.float32],
        *,
        language: str | None = None,
        max_duration_s: float | None = None,
    ) -> TranscriptionResult:
        """Transcribe one audio: a 16 kHz float32 array, bytes, a file object or a local path."""
        started = time.perf_counter()
        if isinstance(audio, np.ndarray):
            samples = audio
            decode_s = 0.0
        else:
            samples = decode_audio(audio, max_duration_s=max_duration_s)
            decode_s = time.perf_counter() - started
        [result] = self.transcribe_many([samples], language=language)
        timings = result.timings
        return TranscriptionResult(
            text=result.text,
            segments=result.segments,
            language=result.language,
            duration_s=result.duration_s,
            model=result.model,
            timings=Timings(
                decode_s=decode_s,
                vad_s=timings.vad_s,
                inference_s=timings.inference_s,
                total_s=time.perf_counter() - started,
            ),
        )

    def transcribe_many(
        self,
        audios: Sequence[NDArray[np.float32]],
        *,
        language: str | Sequence[str | None] | None = None,
    ) -> list[TranscriptionResult]:
        """Transcribe several 16 kHz mono float32 arrays, batching their windows together.

        ``language`` is a code ("sv"), "auto" to detect, None for the engine default, or one
        such value per audio. Timings of shared batches are split over the audios by duration.
        """
        started = time.perf_counter()
        languages = self._languages_for(audios, language)
        vad_started = time.perf_counter()
        windows: list[_Window] = []
        speech: list[list[Span]] = []
        for index, samples in enumerate(audios):
            _check_samples(samples)
            spans, planned = self._plan(samples)
            speech.append(spans)
            windows.extend(_Window(index, span, languages[index]) for span in planned)
        vad_s = time.perf_counter() - vad_started

        inference_started = time.perf_counter()
        with self._lock:
            self._decode_all(audios, windows, speech)
        inference_s = time.perf_counter() - inference_started
        total_s = time.perf_counter() - started

        durations = [duration_of(samples) for samples in audios]
        total_duration = sum(durations) or 1.0
        results = []
        for index, samples in enumerate(audios):
            own = [w for w in windows if w.audio_index == index]
            share = durations[index] / total_duration if len(audios) > 1 else 1.0
            results.append(
                self._result(
                    samples,
                    own,
                    languages[index],
                    Timings(
                        vad_s=vad_s * share,
                        inference_s=inference_s * share,
                        total_s=total_s * share,
                    ),
                )
            )
        return results

    def _languages_for(
        self,
        audios: Sequence[NDArray[np.float32]],
        language: str | Sequence[str | None] | None,
    ) -> list[str | None]:
        """Per audio: a forced code, or None to detect."""
        if language is None or isinstance(language, str):
            requested = [language] * len(audios)
        else:
            requested = list(language)
            if len(requested) != len(audios):
                raise ValueError(f"{len(requested)} languages given for {len(audios)} audios")
        resolved: list[str | None] = []
        loaded = self.loaded
        for code in requested:
            value = (code or self.options.default_language).strip().lower()
            if value == AUTO_LANGUAGE:
                resolved.append(None)
                continue
            if not loaded.multilingual:
                if value != "en":
                    raise UnsupportedLanguageError(value, f"{loaded.name} is English-only")
            elif loaded.tokens.language_id(value) is None:
                raise UnsupportedLanguageError(value, f"{loaded.name} does not know it")
            resolved.append(value)
        return resolved

    def _plan(self, samples: NDArray[np.float32]) -> tuple[list[Span], list[Span]]:
        """(speech spans, decoding windows) for one audio."""
        if samples.shape[0] == 0:
            return [], []
        opts = self.options.vad
        if self._vad is None:
            # Without VAD: plain 30 s slices (to compare with other decoders sample for sample).
            step = int(opts.max_window_s * SAMPLE_RATE)
            slices = [
                Span(s, min(s + step, samples.shape[0])) for s in range(0, samples.shape[0], step)
            ]
            return slices, slices
        spans = self._vad.speech_spans(samples)
        windows = plan_windows(
            spans,
            samples.shape[0],
            max_window_samples=int(opts.max_window_s * SAMPLE_RATE),
            pad_samples=int(opts.window_pad_ms * SAMPLE_RATE / 1000),
        )
        return spans, windows

    def _decode_all(
        self,
        audios: Sequence[NDArray[np.float32]],
        windows: list[_Window],
        speech: Sequence[Sequence[Span]],
    ) -> None:
        """Decode every window; windows Whisper did not finish get a follow-up window.

        Whisper ends a window with a closed timestamp pair when it declines to transcribe the
        speech after it (typically cut by the window's end). OpenAI's long-form loop then seeks
        to that timestamp; here the rest of the window becomes a new window of the next pass,
        batched like the others, when it still holds speech.
        """
        pending = list(windows)
        for _ in range(_MAX_PASSES):
            if not pending:
                return
            self._decode_batches(audios, pending)
            follow_ups = [
                rest
                for window in pending
                if (rest := self._remainder(window, speech[window.audio_index])) is not None
            ]
            windows.extend(follow_ups)
            pending = follow_ups

    def _remainder(self, window: _Window, speech: Sequence[Span]) -> _Window | None:
        decoding = window.decoding
        begin = self.loaded.tokens.timestamp_begin
        if decoding is None or decoding.loop_cut is not None or len(decoding.tokens) < 2:
            return None
        last, before = decoding.tokens[-1], decoding.tokens[-2]
        if last < begin or before < begin:
            return None
        seek = window.span.start + round((last - begin) * TIME_PRECISION_S * SAMPLE_RATE)
        if seek <= window.span.start or seek >= window.span.end:
            return None
        rest = Span(seek, window.span.end)
        voiced = sum(max(0, min(s.end, rest.end) - max(s.start, rest.start)) for s in speech)
        if voiced < _MIN_FOLLOW_UP_SPEECH_S * SAMPLE_RATE:
            return None
        return _Window(window.audio_index, rest, decoding.language)

    def _decode_batches(
        self, audios: Sequence[NDArray[np.float32]], windows: list[_Window]
    ) -> None:
        import torch

        loaded = self.loaded
        batch_size = self.options.batch_size or (16 if loaded.device.startswith("cuda") else 4)
        # Similar lengths decode for a similar number of steps, so rows finish together.
        order = sorted(range(len(windows)), key=lambda i: windows[i].span.length)
        for first in range(0, len(order), batch_size):
            members = [windows[i] for i in order[first : first + batch_size]]
            arrays = [audios[w.audio_index][w.span.start : w.span.end] for w in members]
            try:
                with torch.inference_mode():
                    features = self._features(arrays)
                    decoded = decode_windows(
                        loaded.model,
                        features,
                        tokens=loaded.tokens,
                        multilingual=loaded.multilingual,
                        languages=[w.language for w in members],
                        groups=[w.audio_index for w in members],
                        suppress_tokens=loaded.suppress_tokens,
                        begin_suppress_tokens=loaded.begin_suppress_tokens,
                        options=self.options.decode,
                    )
            except torch.cuda.OutOfMemoryError as exc:
                torch.cuda.empty_cache()
                raise TranscriptionError(
                    f"out of GPU memory for a batch of {len(members)}"
                ) from exc
            for window, result in zip(members, decoded, strict=True):
                window.decoding = result

    def _features(self, arrays: list[NDArray[np.float32]]) -> Any:
        """Log-mel features, (batch, mels, 3000).

        As in OpenAI's and faster-whisper's decoders, each window's log-mel is computed (and
        normalised) over its own audio and then padded with zeros in feature space up to 30 s,
        rather than padding the audio with silence first as transformers' extractor does.
        """
        import torch

        loaded = self.loaded
        extractor = loaded.processor.feature_extractor
        frames = int(extractor.nb_max_frames)
        kwargs: dict[str, Any] = {
            "sampling_rate": SAMPLE_RATE,
            "return_tensors": "pt",
            "padding": "longest",
            "truncation": False,
        }
        if loaded.device.startswith("cuda"):
            kwargs["device"] = loaded.device
        batch = torch.zeros(
            (len(arrays), int(extractor.feature_size), frames),
            dtype=torch.float32,
            device=loaded.device,
        )
        for row, array in enumerate(arrays):
            features = extractor([array], **kwargs).input_features[0, :, :frames]
            batch[row, :, : features.shape[-1]] = features.to(loaded.device)
        return batch.to(dtype=loaded.dtype)

    def _result(
        self,
        samples: NDArray[np.float32],
        windows: list[_Window],
        requested_language: str | None,
        timings: Timings,
    ) -> TranscriptionResult:
        segments: list[Segment] = []
        detected: list[str] = []
        for window in sorted(windows, key=lambda w: w.span.start):
            decoding = window.decoding
            if decoding is None:
                continue
            detected.append(decoding.language)
            segments.extend(self._segments(window.span, decoding))
        language = requested_language or (detected[0] if detected else self._fallback_language())
        text = " ".join(segment.text for segment in segments)
        return TranscriptionResult(
            text=text,
            segments=segments,
            language=language,
            duration_s=duration_of(samples),
            model=self.loaded.name,
            timings=timings,
        )

    def _fallback_language(self) -> str:
        default = self.options.default_language
        if default != AUTO_LANGUAGE:
            return default
        return "sv" if self.loaded.multilingual else "en"

    def _segments(self, span: Span, decoding: WindowDecoding) -> list[Segment]:
        opts = self.options
        offset = span.start / SAMPLE_RATE
        end_limit = span.end / SAMPLE_RATE
        if (
            decoding.no_speech_prob > opts.no_speech_threshold
            and decoding.avg_logprob < opts.logprob_threshold
        ):
            logger.info(
                "window %.1f-%.1f s skipped as silence (no_speech %.2f, avg_logprob %.2f)",
                offset,
                end_limit,
                decoding.no_speech_prob,
                decoding.avg_logprob,
            )
            return []
        if decoding.loop_cut is not None:
            logger.warning(
                "window %.1f-%.1f s: repetition loop cut after %d tokens",
                offset,
                end_limit,
                decoding.loop_cut,
            )
        pieces = _split_segments(decoding.tokens, self.loaded.tokens.timestamp_begin)
        tokenizer = self.loaded.processor.tokenizer
        segments: list[Segment] = []
        for start, end, text_tokens in pieces:
            text = tokenizer.decode(text_tokens, skip_special_tokens=True).strip()
            if not text:
                continue
            seg_start = min(offset + (start if start is not None else 0.0), end_limit)
            seg_end = min(offset + end, end_limit) if end is not None else end_limit
            segments.append(
                Segment(start=round(seg_start, 3), end=round(max(seg_end, seg_start), 3), text=text)
            )
        joined = " ".join(s.text for s in segments)
        ratio = compression_ratio(joined)
        if ratio > opts.compression_ratio_threshold:
            logger.warning(
                "window %.1f-%.1f s dropped: compression ratio %.2f looks like a repetition loop",
                offset,
                end_limit,
                ratio,
            )
            return []
        return segments


def _split_segments(
    tokens: list[int], timestamp_begin: int
) -> list[tuple[float | None, float | None, list[int]]]:
    """(start, end, text tokens) per timestamped piece, times relative to the window."""
    pieces: list[tuple[float | None, float | None, list[int]]] = []
    start: float | None = None
    text: list[int] = []
    for token in tokens:
        if token < timestamp_begin:
            text.append(token)
            continue
        stamp = (token - timestamp_begin) * TIME_PRECISION_S
        if text:
            pieces.append((start, stamp, text))
            text = []
            start = None
        else:
            start = stamp
    if text:
        pieces.append((start, None, text))
    return pieces


def _check_samples(samples: NDArray[np.float32]) -> None:
    if not isinstance(samples, np.ndarray) or samples.ndim != 1:
        raise ValueError("audio must be a 1-D float32 array of 16 kHz samples")
    if samples.dtype != np.float32:
        raise ValueError(f"audio must be float32, not {samples.dtype}")
