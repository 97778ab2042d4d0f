"""Voice activity detection with silero-vad (its weights ship inside the package; torch only)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from whisper_engine.windows import SAMPLE_RATE, WHISPER_WINDOW_S, Span, plan_windows

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5
    min_speech_ms: int = 250
    min_silence_ms: int = 300
    speech_pad_ms: int = 100
    window_pad_ms: int = 200
    max_window_s: float = WHISPER_WINDOW_S


class SileroVad:
    """Finds speech in 16 kHz audio and plans Whisper windows around it.

    The silero model keeps recurrent state between frames, so calls are serialised by a lock.
    """

    def __init__(self, model: Any, options: VadOptions | None = None) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.options = options or VadOptions()

    @classmethod
    def load(cls, options: VadOptions | None = None) -> SileroVad:
        from silero_vad import load_silero_vad

        return cls(load_silero_vad(onnx=False), options)

    def speech_spans(self, samples: NDArray[np.float32]) -> list[Span]:
        """Sample ranges that contain speech."""
        import torch
        from silero_vad import get_speech_timestamps

        if samples.shape[0] == 0:
            return []
        opts = self.options
        # Leave room for the window padding so a single long utterance still fits one window.
        max_speech_s = opts.max_window_s - 2 * opts.window_pad_ms / 1000 - 0.1
        with self._lock, torch.inference_mode():
            stamps = get_speech_timestamps(
                torch.from_numpy(samples),
                self._model,
                threshold=opts.threshold,
                sampling_rate=SAMPLE_RATE,
                min_speech_duration_ms=opts.min_speech_ms,
                min_silence_duration_ms=opts.min_silence_ms,
                speech_pad_ms=opts.speech_pad_ms,
                max_speech_duration_s=max_speech_s,
            )
        return [Span(int(s["start"]), int(s["end"])) for s in stamps]

    def windows(self, samples: NDArray[np.float32]) -> list[Span]:
        """Decoding windows (at most ``max_window_s`` each) covering the speech in ``samples``."""
        opts = self.options
        return plan_windows(
            self.speech_spans(samples),
            samples.shape[0],
            max_window_samples=int(opts.max_window_s * SAMPLE_RATE),
            pad_samples=int(opts.window_pad_ms * SAMPLE_RATE / 1000),
        )
