"""Engine result -> chunk transcript document (the same shape the server writes)."""

from __future__ import annotations

from datetime import datetime

from transcript_contracts.models import ChunkTranscript, QueueMessage, Segment, SourceObject
from whisper_engine.results import TranscriptionResult


def segments_of(result: TranscriptionResult) -> list[Segment]:
    # The engine may round an end a hair before its start; the contract forbids that.
    return [Segment(start=s.start, end=max(s.start, s.end), text=s.text) for s in result.segments]


def chunk_transcript(
    message: QueueMessage,
    etag: str,
    result: TranscriptionResult,
    *,
    processing_s: float,
    created_at: datetime,
) -> ChunkTranscript:
    """The chunk transcript of ``message``'s audio; ``etag`` is the object actually read."""
    return ChunkTranscript(
        session_id=message.session_id,
        chunk_index=message.chunk_index,
        source=SourceObject(bucket=message.bucket, key=message.key, etag=etag),
        language=result.language,
        model=result.model,
        duration_s=result.duration_s,
        text=result.text,
        segments=segments_of(result),
        processing_s=round(max(processing_s, 0.0), 4),
        created_at=created_at,
    )
