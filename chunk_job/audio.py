"""Decode a fetched chunk: 16 kHz mono float32, or a permanent error naming why not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chunk_job.engine import as_chunk_error
from whisper_engine.errors import AudioError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# (temp file, MAX_AUDIO_SECONDS) -> samples; tests put a hook here.
Decoder = Callable[[Path, float], "NDArray[np.float32]"]


def decode(path: Path, max_duration_s: float) -> NDArray[np.float32]:
    """ChunkTooLongError over ``max_duration_s`` (checked before decoding where the container
    declares a duration), ChunkUndecodableError for anything FFmpeg cannot read as audio."""
    from whisper_engine.audio import decode_audio

    try:
        return decode_audio(path, max_duration_s=max_duration_s)
    except AudioError as exc:
        raise as_chunk_error(exc) from exc
