"""Log-mel features of decoding windows, batched for the encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from whisper_engine.audio import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np
    import torch
    from numpy.typing import NDArray

# Whisper's feature frames are 10 ms; its encoder halves them (20 ms per output frame).
HOP_SAMPLES = 160
SAMPLES_PER_ENCODER_FRAME = 2 * HOP_SAMPLES


def window_features(
    extractor: Any, arrays: Sequence[NDArray[np.float32]], *, device: str, dtype: torch.dtype
) -> torch.Tensor:
    """Log-mel features, (batch, mels, 3000), in ``dtype`` on ``device``.

    As in OpenAI's and faster-whisper's decoders, each window's log-mel is computed (and
    normalised) over its own audio and then padded with zeros in feature space up to 30 s,
    rather than padding the audio with silence first as transformers' extractor does (that
    changed tokens).
    """
    import torch

    frames = int(extractor.nb_max_frames)
    kwargs: dict[str, Any] = {
        "sampling_rate": SAMPLE_RATE,
        "return_tensors": "pt",
        "padding": "longest",
        "truncation": False,
    }
    if device.startswith("cuda"):
        kwargs["device"] = device
    batch = torch.zeros(
        (len(arrays), int(extractor.feature_size), frames), dtype=torch.float32, device=device
    )
    for row, array in enumerate(arrays):
        features = extractor([array], **kwargs).input_features[0, :, :frames]
        batch[row, :, : features.shape[-1]] = features.to(device)
    return batch.to(dtype=dtype)


def encoder_frames(samples: int, total_frames: int) -> int:
    """Encoder output frames that cover ``samples`` of audio (the rest is padding)."""
    return max(1, min(total_frames, -(-samples // SAMPLES_PER_ENCODER_FRAME)))
