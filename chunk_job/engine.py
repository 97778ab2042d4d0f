"""Transcribing decoded chunks together, and what a failure means for each of them.

:func:`transcribe_each` is the one place a failed batch is retried one chunk at a time, so one
bad chunk never sinks its neighbours: the batch worker calls it on the engine, the server's
inference thread on every batch it runs (direct requests and the drainer's alike).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from chunk_job.errors import (
    ChunkJobError,
    ChunkLanguageError,
    ChunkTooLongError,
    ChunkUndecodableError,
    TransientChunkError,
)
from whisper_engine.errors import (
    AudioError,
    AudioTooLongError,
    UnsupportedLanguageError,
    WhisperEngineError,
)
from whisper_engine.results import TranscriptionResult

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)


class BatchTranscriber(Protocol):
    """What the chunk job needs of the engine (``whisper_engine.WhisperEngine``)."""

    def transcribe_many(
        self,
        audios: Sequence[NDArray[np.float32]],
        *,
        language: str | Sequence[str | None] | None = None,
    ) -> list[TranscriptionResult]: ...


# Decoded chunks and their languages -> one result or engine error per chunk, in order. The
# worker passes the engine through transcribe_each; the server's drainer its inference thread.
Transcribe = Callable[
    [Sequence["NDArray[np.float32]"], Sequence[str | None]],
    Sequence[TranscriptionResult | WhisperEngineError],
]


def transcribe_each(
    engine: BatchTranscriber,
    audios: Sequence[NDArray[np.float32]],
    languages: Sequence[str | None],
) -> list[TranscriptionResult | WhisperEngineError]:
    """All of ``audios`` in one ``transcribe_many``; if that raises an engine error, each one
    on its own, so the error lands on the chunk that caused it. Other exceptions (bugs, out of
    memory) propagate."""
    try:
        results = engine.transcribe_many(audios, language=list(languages))
        if len(results) != len(audios):
            raise WhisperEngineError(f"engine returned {len(results)} results for {len(audios)}")
        return list(results)
    except WhisperEngineError as exc:
        if len(audios) == 1:
            return [exc]
        logger.warning("batch of %d failed (%s); retrying one by one", len(audios), exc)
    out: list[TranscriptionResult | WhisperEngineError] = []
    for audio, language in zip(audios, languages, strict=True):
        out.extend(transcribe_each(engine, [audio], [language]))
    return out


def as_chunk_error(exc: WhisperEngineError) -> ChunkJobError:
    """An engine error on one chunk: audio or a language it refuses is permanent, anything
    else (a failed inference) transient."""
    if isinstance(exc, AudioTooLongError):
        return ChunkTooLongError(f"audio too long: {exc} (MAX_AUDIO_SECONDS)")
    if isinstance(exc, AudioError):
        return ChunkUndecodableError(f"undecodable audio: {exc}")
    if isinstance(exc, UnsupportedLanguageError):
        return ChunkLanguageError(f"language refused: {exc}")
    return TransientChunkError(f"transcription failed: {exc}")
