"""The Whisper engine: decode, find speech, batch windows through the model, build results."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from whisper_engine.audio import SAMPLE_RATE, AudioSource, decode_audio, duration_of
from whisper_engine.decoding import DecodeOptions, WindowDecoding, language_codes
from whisper_engine.errors import TranscriptionError, UnsupportedLanguageError
from whisper_engine.model import LoadedWhisper, load_whisper, release
from whisper_engine.passes import Window, WindowPasses
from whisper_engine.results import Segment, Timings, TranscriptionResult
from whisper_engine.runner import (
    Streams,
    configure_cpu_threads,
    default_streams,
    release_freed_memory,
)
from whisper_engine.segments import SegmentRules, WindowText, window_segments
from whisper_engine.vad import SileroVad, VadOptions
from whisper_engine.windows import Span, pack_windows, plan_windows
from whisper_engine.words import token_bytes_from_pieces

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

AUTO_LANGUAGE = "auto"
# Follow-up passes for windows Whisper left unfinished; each pass strictly advances.


# Windows per batch when EngineOptions.batch_size is None. On the CPU every row's encoder
# keys/values (6 layers x 1500 frames for base) are read at every decoding step, so rows beyond
# a few stop paying for themselves (whisper_engine/NOTES.md); a GPU has the bandwidth for more.
DEFAULT_BATCH_SIZE = {"cpu": 4, "cuda": 16}


@dataclass(frozen=True)
class EngineOptions:
    """Tuning of the engine; the defaults follow Whisper's reference thresholds."""

    default_language: str = "sv"
    batch_size: int | None = None  # None: DEFAULT_BATCH_SIZE for the device
    use_vad: bool = True
    vad: VadOptions = field(default_factory=VadOptions)
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    # Batches decoded at the same time (runner.py); None: one per CPU core (at most 4) on the
    # CPU, each on one thread; one on CUDA.
    streams: int | None = None
    # Run one short window through the model at load, so the first request is not the slow one
    # (kernel selection, allocator warm-up; on CUDA also context and cuDNN/cuBLAS set-up).
    warmup: bool = True

    def __post_init__(self) -> None:
        for name in ("batch_size", "streams"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")


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
        streams = options.streams or default_streams(loaded.device)
        if not loaded.device.startswith("cuda"):
            configure_cpu_threads(streams)
        self._streams = Streams(streams)
        self._passes = WindowPasses(
            lambda: self.loaded, options.decode, self.batch_size, self._streams
        )
        self._bytes_cache: dict[int, bytes] = {}

    @classmethod
    def load(
        cls,
        model_id_or_dir: str | os.PathLike[str],
        *,
        device: str = "auto",
        compute_type: str = "auto",
        options: EngineOptions | None = None,
    ) -> WhisperEngine:
        """Load the model (offline, in ``compute_type``: compute.py) and the VAD, then warm up.

        ``device="auto"`` falls back to the CPU when CUDA fails at load (model.py).
        """
        opts = options or EngineOptions()
        loaded = load_whisper(model_id_or_dir, device=device, compute_type=compute_type)
        vad = SileroVad.load(opts.vad) if opts.use_vad else None
        engine = cls(loaded, vad, opts)
        if opts.warmup:
            engine.warm_up()
        return engine

    def warm_up(self) -> None:
        """Decode two seconds of quiet noise (a few steps) straight through the model."""
        started = time.perf_counter()
        noise = np.random.default_rng(0).normal(0, 1e-3, 2 * SAMPLE_RATE).astype(np.float32)
        window = Window(0, (Span(0, noise.shape[0]),), self._fallback_language())
        with self._lock:
            self._passes.decode_batches([noise], [window], max_new_tokens=4)
        logger.info("warm-up took %.2f s", time.perf_counter() - started)

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
    def compute_type(self) -> str:
        return self.loaded.compute_type

    @property
    def batch_size(self) -> int:
        device = "cuda" if self.loaded.device.startswith("cuda") else "cpu"
        return self.options.batch_size or DEFAULT_BATCH_SIZE[device]

    @property
    def fallback_reason(self) -> str | None:
        """Why the engine runs on the CPU although a GPU was found; None if it did not fall back."""
        return self.loaded.fallback_reason

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def unload(self) -> None:
        """Free the model; GPU memory is handed back to the driver."""
        with self._lock:
            if self._loaded is not None:
                self._streams.close()
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
        return replace(
            result,
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
        windows: list[Window] = []
        speech: list[list[Span]] = []
        for index, samples in enumerate(audios):
            _check_samples(samples)
            spans, planned = self._plan(samples)
            speech.append(spans)
            windows.extend(Window(index, pieces, languages[index]) for pieces in planned)
        vad_s = time.perf_counter() - vad_started

        inference_started = time.perf_counter()
        with self._lock:
            try:
                self._passes.decode_all(audios, windows, speech)
            finally:
                release_freed_memory()
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
                    speech[index],
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

    def _plan(self, samples: NDArray[np.float32]) -> tuple[list[Span], list[tuple[Span, ...]]]:
        """(speech spans, decoding windows as pieces) for one audio."""
        if samples.shape[0] == 0:
            return [], []
        opts = self.options.vad
        if self._vad is None:
            # Without VAD: plain 30 s slices (to compare with other decoders sample for sample).
            step = int(opts.max_window_s * SAMPLE_RATE)
            slices = [
                Span(s, min(s + step, samples.shape[0])) for s in range(0, samples.shape[0], step)
            ]
            return slices, [(s,) for s in slices]
        spans = self._vad.speech_spans(samples)
        limits = {
            "max_window_samples": int(opts.max_window_s * SAMPLE_RATE),
            "pad_samples": int(opts.window_pad_ms * SAMPLE_RATE / 1000),
        }
        if self.options.decode.timestamp_tokens:
            # Timestamp tokens and follow-up windows ("seek") need the audio's own timeline.
            return spans, [(w,) for w in plan_windows(spans, samples.shape[0], **limits)]
        return spans, pack_windows(spans, samples.shape[0], **limits)

    def _result(
        self,
        samples: NDArray[np.float32],
        windows: list[Window],
        speech: Sequence[Span],
        requested_language: str | None,
        timings: Timings,
    ) -> TranscriptionResult:
        loaded = self.loaded
        tokenizer = loaded.processor.tokenizer
        text = WindowText(
            timestamp_begin=loaded.tokens.timestamp_begin,
            decode=lambda ids: str(tokenizer.decode(ids, skip_special_tokens=True)),
            token_bytes=self._token_bytes,
        )
        rules = SegmentRules(
            no_speech_threshold=self.options.no_speech_threshold,
            logprob_threshold=self.options.logprob_threshold,
            compression_ratio_threshold=self.options.compression_ratio_threshold,
        )
        spans_s = [(s.start / SAMPLE_RATE, s.end / SAMPLE_RATE) for s in speech]
        segments: list[Segment] = []
        decodings: list[WindowDecoding] = []
        for window in sorted(windows, key=lambda w: w.span.start):
            if window.decoding is None:
                continue
            decodings.append(window.decoding)
            segments.extend(
                window_segments(
                    window.decoding,
                    to_audio_s=window.to_audio_s,
                    start_s=window.span.start / SAMPLE_RATE,
                    end_s=window.span.end / SAMPLE_RATE,
                    speech=spans_s,
                    text=text,
                    rules=rules,
                )
            )
        detected, probability = self._detected_language(decodings)
        first_choice = decodings[0].language if decodings else self._fallback_language()
        return TranscriptionResult(
            text=" ".join(segment.text for segment in segments),
            segments=segments,
            language=requested_language or first_choice,
            duration_s=duration_of(samples),
            model=loaded.name,
            timings=timings,
            detected_language=detected,
            language_probability=probability,
        )

    def _detected_language(
        self, decodings: Sequence[WindowDecoding]
    ) -> tuple[str | None, float | None]:
        """The language distribution averaged over the audio's windows: (code, probability)."""
        vectors = [d.language_probs for d in decodings if d.language_probs is not None]
        if not vectors:
            return None, None
        pooled = np.mean(np.stack(vectors), axis=0)
        best = int(pooled.argmax())
        return language_codes(self.loaded.tokens)[best], round(float(pooled[best]), 4)

    def _token_bytes(self, token: int) -> bytes:
        cached = self._bytes_cache.get(token)
        if cached is None:
            piece = self.loaded.processor.tokenizer.convert_ids_to_tokens(token)
            cached = token_bytes_from_pieces(str(piece)) if piece is not None else b""
            self._bytes_cache[token] = cached
        return cached

    def _fallback_language(self) -> str:
        default = self.options.default_language
        if default != AUTO_LANGUAGE:
            return default
        return "sv" if self.loaded.multilingual else "en"


def _check_samples(samples: NDArray[np.float32]) -> None:
    if not isinstance(samples, np.ndarray) or samples.ndim != 1:
        raise ValueError("audio must be a 1-D float32 array of 16 kHz samples")
    if samples.dtype != np.float32:
        raise ValueError(f"audio must be float32, not {samples.dtype}")
