"""Documents for storage and router tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from transcript_contracts.models import ChunkTranscript, Manifest, SourceObject, TranscriptSegment

BASE_TIME = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BUCKET = "transcripts-test-bucket"


def chunk_transcript(
    session_id: str,
    index: int,
    *,
    bucket: str = BUCKET,
    etag: str = "etag",
    duration: float = 10.0,
    text: str | None = None,
) -> ChunkTranscript:
    words = text if text is not None else f"Chunk {index} of {session_id}."
    return ChunkTranscript(
        session_id=session_id,
        chunk_index=index,
        source=SourceObject(bucket=bucket, key=f"audio/{session_id}/chunk-{index}.mp3", etag=etag),
        language="sv",
        model="whisper-test",
        duration_s=duration,
        text=words,
        segments=[TranscriptSegment(start=0.5, end=min(duration, 4.0), text=words)],
        processing_s=0.25,
        created_at=BASE_TIME + timedelta(seconds=index),
    )


def manifest(session_id: str, chunk_count: int, language: str | None = "sv") -> Manifest:
    return Manifest(session_id=session_id, chunk_count=chunk_count, language=language)
