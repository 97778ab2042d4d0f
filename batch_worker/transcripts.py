"""Engine result -> chunk transcript document (the same shape the server writes)."""

from __future__ import annotations

from datetime import datetime

from transcript_contracts.models import ChunkTranscript, QueueMessage, SourceObject, segments_from
from whisper_engine.results import TranscriptionResult


def chunk_transcript(
    message: QueueMessage,
    etag: str,
    result: TranscriptionResult,
    *,
    processing_s: float,
    created_at: datetime,
    model_version: str | None = None,
) -> ChunkTranscript:
    """The chunk transcript of ``message``'s audio; ``etag`` is the object actually read."""
    return ChunkTranscript(
        session_id=message.session_id,
        chunk_index=message.chunk_index,
        source=SourceObject(bucket=message.bucket, key=message.key, etag=etag),
        language=result.language,
        model=result.model,
        model_version=model_version,
        duration_s=result.duration_s,
        text=result.text,
        segments=segments_from(result.segments),
        processing_s=round(max(processing_s, 0.0), 4),
        created_at=created_at,
    )
