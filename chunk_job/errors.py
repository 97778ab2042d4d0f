"""The two kinds of error the chunk job raises; each adapter maps them once.

ChunkJobError
├── PermanentChunkError        retrying the same object will not help (server: 4xx; queue: DLQ)
│   ├── InvalidChunkKeyError       the key is not an audio chunk of the layout
│   ├── ChunkMissingError          the audio object does not exist (deleted?)
│   ├── ChunkTooLargeError         over MAX_DOWNLOAD_BYTES
│   ├── ChunkUndecodableError      not audio FFmpeg can decode
│   ├── ChunkTooLongError          over MAX_AUDIO_SECONDS
│   ├── ChunkLanguageError         a language the model does not know
│   └── StoredTranscriptInvalidError  the chunk transcript exists but is not a valid one
└── TransientChunkError        storage, network or the engine failed: a later try may work
                               (server: 502; queue: the message comes back)
"""

from __future__ import annotations


class ChunkJobError(Exception):
    """Base of every error the chunk job raises on purpose. ``reason`` is one sentence."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PermanentChunkError(ChunkJobError):
    """The chunk cannot be transcribed as it is; only a new upload (or an operator) helps."""


class InvalidChunkKeyError(PermanentChunkError):
    """The key names no audio chunk (outside the key grammar)."""


class ChunkMissingError(PermanentChunkError):
    """The audio object does not exist (deleted since it was queued?)."""


class ChunkTooLargeError(PermanentChunkError):
    """The audio object is over MAX_DOWNLOAD_BYTES."""


class ChunkUndecodableError(PermanentChunkError):
    """The audio cannot be decoded."""


class ChunkTooLongError(PermanentChunkError):
    """The audio lasts longer than MAX_AUDIO_SECONDS."""


class ChunkLanguageError(PermanentChunkError):
    """The language asked for is not one the model knows."""


class StoredTranscriptInvalidError(PermanentChunkError):
    """The chunk transcript exists (so it is never written again, P7) but cannot be read as
    one: too large or not a valid document. An operator has to look at it."""


class TransientChunkError(ChunkJobError):
    """S3, the network or the engine failed for a reason outside the chunk."""
