"""An engine result as the chunk transcript document, the same shape from every path."""

from __future__ import annotations

from datetime import datetime

from transcript_contracts.models import (
    ChunkTranscript,
    SourceObject,
    TranscribedBy,
    segments_from,
)
from whisper_engine.results import TranscriptionResult


def build_transcript(
    *,
    bucket: str,
    key: str,
    session_id: str,
    index: int,
    etag: str,
    result: TranscriptionResult,
    processing_s: float,
    created_at: datetime,
    transcribed_by: TranscribedBy,
    model_version: str | None,
    language_warning: str | None = None,
    word_timestamps: bool = False,
) -> ChunkTranscript:
    """The chunk transcript of ``s3://bucket/key``; ``etag`` is the object actually read.
    Segment ends the engine rounded a hair before their start are clamped (the contract
    forbids them)."""
    return ChunkTranscript(
        session_id=session_id,
        chunk_index=index,
        source=SourceObject(bucket=bucket, key=key, etag=etag),
        language=result.language,
        model=result.model,
        model_version=model_version,
        transcribed_by=transcribed_by,
        detected_language=result.detected_language,
        language_probability=result.language_probability,
        language_warning=language_warning,
        duration_s=result.duration_s,
        text=result.text,
        segments=segments_from(result.segments, words=word_timestamps),
        processing_s=round(max(processing_s, 0.0), 4),
        created_at=created_at,
    )
