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
    window_pad_ms: int = 300
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
        import silero_vad
        import torch

        if samples.shape[0] == 0:
            return []
        opts = self.options
        # Leave room for the window padding so a single long utterance still fits one window.
        max_speech_s = opts.max_window_s - 2 * opts.window_pad_ms / 1000 - 0.1
        settings: dict[str, Any] = {
            "threshold": opts.threshold,
            "sampling_rate": SAMPLE_RATE,
            "min_speech_duration_ms": opts.min_speech_ms,
            "min_silence_duration_ms": opts.min_silence_ms,
            "speech_pad_ms": opts.speech_pad_ms,
            "max_speech_duration_s": max_speech_s,
        }
        from_probs = getattr(silero_vad.utils_vad, "get_speech_timestamps_from_probs", None)
        audio = torch.from_numpy(samples)
        with self._lock, torch.inference_mode():
            if from_probs is not None and _batchable(self._model):
                probs = _speech_probs(self._model, audio)
                stamps = from_probs(probs, audio_length_samples=samples.shape[0], **settings)
            else:
                stamps = silero_vad.get_speech_timestamps(audio, self._model, **settings)
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


# silero's 16 kHz model sees 512 new samples per call, with the previous call's last 64 in front.
_CHUNK = 512
_CONTEXT = 64
# Chunks per encoder batch (about 2 minutes of audio): bounds memory on long audio.
_BLOCK = 4096


def _batchable(model: Any) -> bool:
    """True for the silero v5/v6 TorchScript model this module knows how to batch."""
    inner = getattr(model, "_model", None)
    rnn = getattr(getattr(inner, "decoder", None), "rnn", None)
    return all(hasattr(inner, name) for name in ("stft", "encoder")) and all(
        hasattr(rnn, name) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )


def _speech_probs(model: Any, audio: Any) -> list[float]:
    """silero's per-chunk speech probabilities, as its own chunk-by-chunk loop computes them.

    That loop calls the model once per 32 ms (3000 calls for 100 s, about 0.5 ms of Python
    each: a quarter of the whole transcription once the decoder got faster). Only the LSTM
    carries state from chunk to chunk; the STFT and the convolutional encoder see one chunk
    (plus the 64 samples before it) each, so they run over all chunks in one batch, and the
    LSTM cell runs over the sequence as one ``nn.LSTM`` call with the same weights. Same
    probabilities to within 1e-5.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812 - torch's own convention

    inner = model._model
    cell = inner.decoder.rnn
    lstm = torch.nn.LSTM(int(cell.weight_ih.shape[1]), int(cell.weight_hh.shape[1]))
    lstm.weight_ih_l0.data = cell.weight_ih.detach()
    lstm.weight_hh_l0.data = cell.weight_hh.detach()
    lstm.bias_ih_l0.data = cell.bias_ih.detach()
    lstm.bias_hh_l0.data = cell.bias_hh.detach()
    count = -(-int(audio.shape[0]) // _CHUNK)
    chunks = F.pad(audio, (0, count * _CHUNK - int(audio.shape[0]))).view(count, _CHUNK)
    context = torch.cat([torch.zeros(1, _CONTEXT), chunks[:-1, -_CONTEXT:]])
    state: tuple[Any, Any] | None = None
    probs: list[float] = []
    for first in range(0, count, _BLOCK):
        block = slice(first, first + _BLOCK)
        x = torch.cat([context[block], chunks[block]], dim=1)
        features = inner.encoder(inner.stft(x)).squeeze(-1)
        hidden, state = lstm(features[:, None, :], state)
        out = inner.decoder.decoder(hidden[:, 0].unsqueeze(-1))
        probs.extend(out.squeeze(1).mean(dim=1).tolist())
    return probs
