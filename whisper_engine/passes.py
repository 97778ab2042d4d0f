"""Decoding passes over windows: batches through the model, and the follow-up windows of
Whisper's timestamp-token mode.

Split from transcriber.py (which plans windows and builds results) to keep both small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from whisper_engine.audio import SAMPLE_RATE
from whisper_engine.decoding import DecodeOptions, WindowDecoding, decode_windows
from whisper_engine.errors import TranscriptionError
from whisper_engine.features import encoder_frames, window_features
from whisper_engine.model import LoadedWhisper
from whisper_engine.runner import Streams, plan_batches
from whisper_engine.tokens import TIME_PRECISION_S
from whisper_engine.windows import Span

if TYPE_CHECKING:
    from numpy.typing import NDArray

# Follow-up passes for windows Whisper left unfinished; each pass strictly advances.
_MAX_PASSES = 4
_MIN_FOLLOW_UP_SPEECH_S = 0.3


@dataclass
class Window:
    """Pieces of one audio decoded as one stretch (the silences between them left out), and
    what decoding it gave. Times in the decoded stretch map back through ``to_audio_s``."""

    audio_index: int
    pieces: tuple[Span, ...]
    language: str | None
    decoding: WindowDecoding | None = None

    @property
    def span(self) -> Span:
        """From the first piece's start to the last one's end."""
        return Span(self.pieces[0].start, self.pieces[-1].end)

    @property
    def length(self) -> int:
        return sum(p.length for p in self.pieces)

    def samples(self, audio: NDArray[np.float32]) -> NDArray[np.float32]:
        if len(self.pieces) == 1:
            return audio[self.span.start : self.span.end]
        return np.concatenate([audio[p.start : p.end] for p in self.pieces])

    def to_audio_s(self, seconds: float) -> float:
        """A time in the decoded stretch (s from its start) as a time in the audio."""
        offset = round(seconds * SAMPLE_RATE)
        for piece in self.pieces:
            if offset <= piece.length:
                return (piece.start + max(0, offset)) / SAMPLE_RATE
            offset -= piece.length
        return self.span.end / SAMPLE_RATE


class WindowPasses:
    """Runs windows through the model in batches, on the engine's streams."""

    def __init__(
        self,
        loaded: Callable[[], LoadedWhisper],
        decode: DecodeOptions,
        batch_size: int,
        streams: Streams,
    ) -> None:
        self._loaded = loaded
        self._decode = decode
        self._batch_size = batch_size
        self._streams = streams

    def decode_all(
        self,
        audios: Sequence[NDArray[np.float32]],
        windows: list[Window],
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
            self.decode_batches(audios, pending)
            follow_ups = [
                rest
                for window in pending
                if (rest := self._remainder(window, speech[window.audio_index])) is not None
            ]
            windows.extend(follow_ups)
            pending = follow_ups

    def _remainder(self, window: Window, speech: Sequence[Span]) -> Window | None:
        """Timestamp-token mode: the rest of a window Whisper closed early, if it holds speech
        (windows of that mode are single pieces: ``_plan``)."""
        decoding = window.decoding
        begin = self._loaded().tokens.timestamp_begin
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
        return Window(window.audio_index, (rest,), decoding.language)

    def decode_batches(
        self,
        audios: Sequence[NDArray[np.float32]],
        windows: list[Window],
        *,
        max_new_tokens: int | None = None,
    ) -> None:
        options = self._decode
        if max_new_tokens is not None:
            options = replace(options, max_new_tokens=max_new_tokens)
        batches = plan_batches([w.length for w in windows], self._batch_size, self._streams.count)

        def job(batch: list[int]) -> None:
            members = [windows[i] for i in batch]
            arrays = [w.samples(audios[w.audio_index]) for w in members]
            decoded = self._decode_batch(arrays, members, options)
            for window, result in zip(members, decoded, strict=True):
                window.decoding = result

        self._streams.run(job, batches)

    def _decode_batch(
        self, arrays: list[NDArray[np.float32]], members: list[Window], options: DecodeOptions
    ) -> list[WindowDecoding]:
        import torch

        loaded = self._loaded()
        if loaded.decoder is None:
            raise TranscriptionError("the model has been unloaded")
        try:
            with torch.inference_mode():
                features = window_features(
                    loaded.processor.feature_extractor,
                    arrays,
                    device=loaded.device,
                    dtype=loaded.dtype,
                )
                encoded = loaded.encode(features)
                return decode_windows(
                    loaded.decoder,
                    encoded,
                    tokens=loaded.tokens,
                    multilingual=loaded.multilingual,
                    languages=[w.language for w in members],
                    groups=[w.audio_index for w in members],
                    suppress_tokens=loaded.suppress_tokens,
                    begin_suppress_tokens=loaded.begin_suppress_tokens,
                    options=options,
                    audio_frames=[
                        encoder_frames(a.shape[0], int(encoded.shape[1])) for a in arrays
                    ],
                )
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            raise TranscriptionError(f"out of GPU memory for a batch of {len(members)}") from exc
