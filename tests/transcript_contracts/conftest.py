from __future__ import annotations

from datetime import UTC, datetime, timedelta

from transcript_contracts.models import ChunkTranscript, SourceObject, TranscriptSegment

BASE_TIME = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def make_chunk(
    index: int,
    duration: float = 10.0,
    segments: list[tuple[float, float, str]] | None = None,
    *,
    session_id: str = "s1",
    language: str = "sv",
    model: str = "whisper-base",
) -> ChunkTranscript:
    segs = [TranscriptSegment(start=a, end=b, text=t) for a, b, t in (segments or [])]
    return ChunkTranscript(
        session_id=session_id,
        chunk_index=index,
        source=SourceObject(bucket="bucket", key=f"audio/{session_id}/chunk-{index}.mp3", etag="e"),
        language=language,
        model=model,
        duration_s=duration,
        text=" ".join(s.text.strip() for s in segs),
        segments=segs,
        processing_s=1.0,
        created_at=BASE_TIME + timedelta(seconds=index),
    )
