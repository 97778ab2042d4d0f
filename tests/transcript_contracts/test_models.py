from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tests.transcript_contracts.conftest import make_chunk
from transcript_contracts.models import (
    MAX_QUEUE_MESSAGE_BYTES,
    ChunkTranscript,
    Manifest,
    QueueMessage,
    TranscriptSegment,
)

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def test_manifest_minimal_and_full() -> None:
    m = Manifest.model_validate_json('{"session_id": "s1", "chunk_count": 3}')
    assert (m.schema_version, m.chunk_count, m.language, m.chunks) == (1, 3, None, None)
    full = Manifest.model_validate(
        {
            "session_id": "s1",
            "chunk_count": 2,
            "language": "sv",
            "chunks": [{"index": 1, "offset_s": 30.5}, {"index": 0}],
            "callback_url": "ignored by this version",
        }
    )
    assert full.offset_for(1) == 30.5
    assert full.offset_for(0) is None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"chunk_count": 1}, "session_id"),
        ({"session_id": "../x", "chunk_count": 1}, "session id"),
        ({"session_id": "s1", "chunk_count": 0}, "greater than or equal to 1"),
        ({"session_id": "s1", "chunk_count": "2"}, "valid integer"),
        ({"session_id": "s1", "chunk_count": 2, "chunks": [{"index": 2}]}, "outside 0..1"),
        ({"session_id": "s1", "chunk_count": 2, "chunks": [{"index": 1}, {"index": 1}]}, "twice"),
        (
            {
                "session_id": "s1",
                "chunk_count": 2,
                "chunks": [{"index": 0, "offset_s": 5}, {"index": 1, "offset_s": 1}],
            },
            "must not decrease",
        ),
        (
            {"session_id": "s1", "chunk_count": 1, "chunks": [{"index": 0, "offset_s": -1}]},
            "greater",
        ),
        ({"session_id": "s1", "chunk_count": 1, "schema_version": 2}, "schema_version"),
    ],
)
def test_manifest_rejects_bad_documents(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Manifest.model_validate(doc)


def test_chunk_transcript_round_trips_and_is_strict() -> None:
    chunk = make_chunk(2, 12.5, [(0.0, 1.5, "hej"), (1.5, 3.0, "då")])
    again = ChunkTranscript.model_validate_json(chunk.model_dump_json())
    assert again == chunk
    doc = json.loads(chunk.model_dump_json())
    assert doc["schema_version"] == 1
    assert set(doc) == {
        "schema_version", "session_id", "chunk_index", "source", "language", "model",
        "duration_s", "text", "segments", "processing_s", "created_at",
    }  # fmt: skip
    doc["unknown"] = 1
    with pytest.raises(ValidationError, match="unknown"):
        ChunkTranscript.model_validate(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"duration_s": -1}, "greater than or equal"),
        ({"duration_s": float("nan")}, "duration_s"),
        ({"duration_s": float("inf")}, "finite"),
        ({"created_at": "2026-11-21T12:00:00"}, "time zone"),
        ({"chunk_index": -1}, "greater than or equal"),
        ({"source": {"bucket": "b", "key": "k", "etag": "e"}}, "at least 3"),
        ({"source": {"bucket": "bucket", "key": "../k", "etag": "e"}}, "traversal"),
    ],
)
def test_chunk_transcript_rejects_bad_values(change: dict[str, object], message: str) -> None:
    doc = json.loads(make_chunk(0).model_dump_json())
    doc.update(change)
    with pytest.raises(ValidationError, match=message):
        ChunkTranscript.model_validate(doc)


def test_segment_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValidationError, match="before it starts"):
        TranscriptSegment(start=2.0, end=1.0, text="x")


def test_etag_quotes_are_stripped_so_events_and_heads_agree() -> None:
    chunk = make_chunk(0)
    doc = json.loads(chunk.model_dump_json())
    doc["source"]["etag"] = '"abc"'
    assert ChunkTranscript.model_validate(doc).source.etag == "abc"


def _message(**change: object) -> QueueMessage:
    doc: dict[str, object] = {
        "bucket": "bucket",
        "key": "audio/s1/chunk-0001.mp3",
        "etag": '"d41d8"',
        "session_id": "s1",
        "chunk_index": 1,
        "enqueued_at": NOW,
        "reason": "server_unhealthy",
    }
    doc.update(change)
    return QueueMessage.model_validate(doc)


def test_queue_message_is_a_small_pointer() -> None:
    msg = _message()
    body = msg.to_body()
    assert QueueMessage.model_validate_json(body) == msg
    assert json.loads(body)["schema_version"] == 1
    assert msg.etag == "d41d8"
    assert len(body.encode()) < MAX_QUEUE_MESSAGE_BYTES


def test_queue_message_reason_is_one_of_three() -> None:
    for reason in ("server_unhealthy", "retries_exhausted", "forced"):
        assert _message(reason=reason).reason == reason
    with pytest.raises(ValidationError, match="reason"):
        _message(reason="because")
