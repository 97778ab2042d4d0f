"""The router's completion notifications (issue 9), observed through an EventBridge rule → SQS
queue in moto: exactly one ``Session Transcribed`` per session, from the invocation that won the
create-only write of session.json, even when two invocations stitch at the same instant."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from notifications import SESSION_TRANSCRIBED, DeliveryFailureRecord
from tests.events.factories import object_created
from tests.notifications.support import EventObserver
from tests.router.conftest import (
    REGION,
    SESSION,
    AppFactory,
    Aws,
    Clock,
    FakeServer,
    invoke,
    invoke_concurrently,
)
from tests.transcript_store.factories import BUCKET, chunk_transcript

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def observer(aws: Aws) -> EventObserver:
    return EventObserver.create(SESSION.client("events", region_name=REGION), aws.sqs)


def put_same_audio(aws: Aws, session_id: str, index: int) -> dict[str, Any]:
    key = f"audio/{session_id}/chunk-{index}.mp3"
    return object_created(BUCKET, key, aws.put_audio(key, b"same"))


def session_events(observer: EventObserver) -> list[dict[str, Any]]:
    return [e for e in observer.events() if e["detail-type"] == SESSION_TRANSCRIBED]


def test_stitch_race_publishes_exactly_one_session_transcribed(
    aws: Aws, make_app: AppFactory, server: FakeServer, clock: Clock, observer: EventObserver
) -> None:
    make_app()
    aws.put_manifest("r1", 4)
    for i in (0, 1):
        aws.store.write_chunk_transcript(BUCKET, chunk_transcript("r1", i), aws.layout)
    events = [put_same_audio(aws, "r1", i) for i in (2, 3)]
    both_written = threading.Barrier(2, timeout=10)
    # Each forward returns only when both chunk transcripts exist: both stitch at once.
    server.after_write = lambda body: both_written.wait()
    results = invoke_concurrently(events, clock)
    assert sorted(r["stitch"]["status"] for r in results) == ["already_stitched", "stitched"]
    (event,) = session_events(observer)
    detail = event["detail"]
    assert (detail["session_id"], detail["chunk_count"], detail["language"]) == ("r1", 4, "sv")
    assert detail["transcript_keys"]["json"] == "transcripts/r1/session.json"


def test_manifest_last_publishes_once_and_redeliveries_publish_nothing(
    aws: Aws, make_app: AppFactory, server: FakeServer, clock: Clock, observer: EventObserver
) -> None:
    make_app()
    chunk_events = [put_same_audio(aws, "r2", i) for i in range(2)]
    for event in chunk_events:
        assert invoke(event, clock)["stitch"]["status"] == "no_manifest"
    assert session_events(observer) == []
    manifest_key = aws.put_manifest("r2", 2)
    manifest_event = object_created(BUCKET, manifest_key, "m-etag")
    assert invoke(manifest_event, clock)["stitch"]["status"] == "stitched"
    assert [e["detail"]["session_id"] for e in session_events(observer)] == ["r2"]
    # The manifest's redelivery and a forced re-drive of a chunk find it already stitched.
    assert invoke(manifest_event, clock)["stitch"]["status"] == "already_stitched"
    redrive = {"bucket": BUCKET, "key": "audio/r2/chunk-0.mp3", "force": True}
    assert invoke(redrive, clock)["stitch"]["status"] == "already_stitched"
    assert session_events(observer) == []


def test_refused_callback_never_fails_the_invocation(
    aws: Aws, make_app: AppFactory, server: FakeServer, clock: Clock, observer: EventObserver
) -> None:
    make_app(webhook_secret="router-webhook-key")
    doc = {"session_id": "r3", "chunk_count": 1, "callback_url": "https://10.0.0.5/hook"}
    aws.s3.put_object(Bucket=BUCKET, Key="audio/r3/manifest.json", Body=json.dumps(doc).encode())
    result = invoke(put_same_audio(aws, "r3", 0), clock)
    assert (result["status"], result["stitch"]["status"]) == ("forwarded", "stitched")
    assert [e["detail"]["session_id"] for e in session_events(observer)] == ["r3"]
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="transcripts/r3/failures/")
    (key,) = [item["Key"] for item in listed["Contents"]]
    record = DeliveryFailureRecord.model_validate_json(aws.read(key))
    assert record.target == "callback" and "not a public address" in record.error
    assert record.destination == "https://10.0.0.5"


def test_notifications_disabled_publish_nothing(
    aws: Aws, make_app: AppFactory, server: FakeServer, clock: Clock, observer: EventObserver
) -> None:
    make_app(notifications_enabled=False)
    aws.put_manifest("r4", 1)
    result = invoke(put_same_audio(aws, "r4", 0), clock)
    assert result["stitch"]["status"] == "stitched"
    assert observer.events() == []
