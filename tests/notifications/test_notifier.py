"""EventBridge events of the notifier, observed through a rule → SQS queue (moto): one
``Session Transcribed`` for the winning stitch only, ``Chunk Failed`` with its S3 record, and
failed publishes recorded instead of raised."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from notifications import (
    CHUNK_FAILED,
    EVENT_SOURCE,
    SESSION_TRANSCRIBED,
    ChunkFailedDetail,
    DeliveryFailureRecord,
    EventPublisher,
    NotificationsOff,
    Notifier,
    build_notifier,
)
from notifications.records import chunk_failure_key
from router.settings import RouterSettings
from tests.notifications.conftest import Aws, NotifierFactory
from tests.notifications.support import EventObserver
from tests.transcript_store.factories import BUCKET
from transcript_contracts.settings import load_settings
from transcript_store import StitchOutcome


def test_stitched_session_publishes_one_session_transcribed(
    aws: Aws, make_notifier: NotifierFactory
) -> None:
    outcome = aws.stitched_session("s1", chunk_count=3)
    make_notifier().session_stitched(outcome)
    (event,) = aws.observer.events()
    assert (event["source"], event["detail-type"]) == (EVENT_SOURCE, SESSION_TRANSCRIBED)
    detail = event["detail"]
    assert detail == {
        "schema_version": 1,
        "event_id": detail["event_id"],
        "session_id": "s1",
        "bucket": BUCKET,
        "transcript_keys": {
            "json": "transcripts/s1/session.json",
            "txt": "transcripts/s1/session.txt",
            "srt": "transcripts/s1/session.srt",
            "vtt": "transcripts/s1/session.vtt",
        },
        "chunk_count": 3,
        "duration_s": 30.0,
        "language": "sv",
        "model": "whisper-test",
        "models": ["whisper-test"],
        "occurred_at": "2026-11-21T13:00:00Z",
    }
    assert len(detail["event_id"]) == 32
    for key in detail["transcript_keys"].values():
        assert aws.read(key)


@pytest.mark.parametrize("status", ["already_stitched", "incomplete", "no_manifest"])
def test_other_outcomes_publish_nothing(
    aws: Aws, make_notifier: NotifierFactory, status: str
) -> None:
    aws.stitched_session("s1")
    make_notifier().session_stitched(StitchOutcome(status, "s1"))  # type: ignore[arg-type]
    assert aws.observer.events() == []


def test_chunk_failed_publishes_and_records_the_reason(
    aws: Aws, make_notifier: NotifierFactory
) -> None:
    make_notifier().chunk_failed(BUCKET, "audio/s2/chunk-7.mp3", "undecodable audio: bad header")
    (event,) = aws.observer.events()
    assert event["detail-type"] == CHUNK_FAILED
    detail = event["detail"]
    assert (detail["session_id"], detail["chunk_index"], detail["key"], detail["reason"]) == (
        "s2",
        7,
        "audio/s2/chunk-7.mp3",
        "undecodable audio: bad header",
    )
    record = ChunkFailedDetail.model_validate_json(aws.read(chunk_failure_key(aws.layout, "s2", 7)))
    assert record.model_dump(mode="json") == detail
    # Listing the session's chunk transcripts is not confused by the record.
    assert aws.store.list_chunk_transcript_indices(BUCKET, "s2", aws.layout) == []


def test_chunk_failed_once_per_audio_version(aws: Aws, make_notifier: NotifierFactory) -> None:
    # The worker reports every failed receive (up to maxReceiveCount): one event per version.
    key = "audio/s2/chunk-3.mp3"
    first = aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"corrupt")["ETag"].strip('"')
    notifier = make_notifier()
    for _ in range(3):
        notifier.chunk_failed(BUCKET, key, "undecodable audio")
    (event,) = aws.observer.events()
    assert (event["detail"]["chunk_index"], event["detail"]["etag"]) == (3, first)
    # A re-upload that fails again is news.
    second = aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"corrupt again")["ETag"].strip('"')
    notifier.chunk_failed(BUCKET, key, "undecodable audio, again")
    notifier.chunk_failed(BUCKET, key, "undecodable audio, again")
    (event,) = aws.observer.events()
    assert (event["detail"]["etag"], event["detail"]["reason"]) == (
        second,
        "undecodable audio, again",
    )
    record = ChunkFailedDetail.model_validate_json(aws.read(chunk_failure_key(aws.layout, "s2", 3)))
    assert record.etag == second


def test_chunk_failed_with_a_key_outside_the_grammar_still_publishes(
    aws: Aws, make_notifier: NotifierFactory
) -> None:
    make_notifier().chunk_failed(BUCKET, "audio/loose-file.mp3", "x" * 5000)
    (event,) = aws.observer.events()
    assert (event["detail"]["session_id"], event["detail"]["chunk_index"]) == (None, None)
    assert len(event["detail"]["reason"]) == 2000
    assert aws.keys("transcripts/") == []


def test_custom_bus(aws: Aws, make_notifier: NotifierFactory) -> None:
    observer = EventObserver.create(aws.events, aws.sqs, bus="transcription-events")
    make_notifier(bus="transcription-events").chunk_failed(BUCKET, "audio/s3/chunk-0.wav", "r")
    assert [e["detail-type"] for e in observer.events()] == [CHUNK_FAILED]
    assert aws.observer.events() == []


def test_publish_failure_is_recorded_never_raised(aws: Aws, make_notifier: NotifierFactory) -> None:
    outcome = aws.stitched_session("s4")
    notifier = make_notifier(bus="no-such-bus")
    notifier.session_stitched(outcome)  # does not raise
    (key,) = aws.keys("transcripts/s4/failures/")
    record = DeliveryFailureRecord.model_validate_json(aws.read(key))
    assert key == f"transcripts/s4/failures/delivery-{record.event_id}-eventbridge.json"
    assert (record.target, record.destination, record.detail_type) == (
        "eventbridge",
        "no-such-bus",
        SESSION_TRANSCRIBED,
    )
    assert "no-such-bus" in record.error
    assert record.detail.session_id == "s4"


def test_unreadable_session_transcript_publishes_nothing(
    aws: Aws, make_notifier: NotifierFactory
) -> None:
    aws.put_bytes("transcripts/s5/session.json", b"{not json")
    make_notifier().session_stitched(StitchOutcome("stitched", "s5"))
    make_notifier().session_stitched(StitchOutcome("stitched", "s6"))  # absent
    assert aws.observer.events() == []


def test_notifications_off_tells_no_one(aws: Aws) -> None:
    outcome = aws.stitched_session("s7")
    noop = NotificationsOff()
    noop.session_stitched(outcome)
    noop.chunk_failed(BUCKET, "audio/s7/chunk-0.mp3", "r")
    assert noop.wait_for_deliveries() == 0
    assert aws.observer.events() == []


def _router_settings(**overrides: object) -> RouterSettings:
    return load_settings(
        RouterSettings,
        bucket_name=BUCKET,
        queue_url="https://sqs.example/q",
        idempotency_table="t",
        force_queue=True,
        **overrides,
    )


def test_build_notifier_follows_the_settings(aws: Aws) -> None:
    def build(settings: RouterSettings) -> Notifier | NotificationsOff:
        return build_notifier(
            settings,
            bucket=BUCKET,
            layout=settings.layout,
            s3=aws.s3,
            events=lambda: aws.events,
            ssm=lambda: aws.ssm,
        )

    assert isinstance(build(_router_settings(notifications_enabled=False)), NotificationsOff)
    notifier = build(_router_settings())
    assert isinstance(notifier, Notifier)
    notifier.session_stitched(aws.stitched_session("s8"))
    assert [e["detail"]["session_id"] for e in aws.observer.events()] == ["s8"]


def test_publisher_sends_the_detail_json(aws: Aws) -> None:
    detail = ChunkFailedDetail.model_validate(
        {
            "event_id": "e1",
            "session_id": "s9",
            "chunk_index": 0,
            "bucket": BUCKET,
            "key": "audio/s9/chunk-0.mp3",
            "reason": "r",
            "occurred_at": "2026-11-21T13:00:00Z",
        }
    )
    assert EventPublisher(lambda: aws.events).publish(CHUNK_FAILED, detail)
    (event,) = aws.observer.events()
    assert event["detail"] == json.loads(detail.model_dump_json())


def test_settings_validate_the_webhook() -> None:
    from transcript_contracts.errors import SettingsError

    with pytest.raises(SettingsError, match="WEBHOOK_SECRET or WEBHOOK_SECRET_PARAMETER"):
        _router_settings(webhook_url="https://hooks.example/t")
    with pytest.raises(SettingsError, match=r"WEBHOOK_URL: .*only https"):
        _router_settings(webhook_url="http://hooks.example/t", webhook_secret="k")
    with pytest.raises(SettingsError, match=r"WEBHOOK_URL: .*user information"):
        _router_settings(webhook_url="https://u:p@hooks.example/t", webhook_secret="k")
    with pytest.raises(SettingsError, match="EVENT_BUS_NAME"):
        _router_settings(event_bus_name="bad bus!")
    ok = _router_settings(
        webhook_url="https://hooks.example/t",
        webhook_secret=SecretStr("k"),
        event_bus_name="arn:aws:events:eu-north-1:123456789012:event-bus/transcripts",
    )
    assert ok.webhook_url == "https://hooks.example/t"
    assert "k" not in repr(ok.webhook_secret)
    assert _router_settings(webhook_url="", webhook_secret="").webhook_url is None
