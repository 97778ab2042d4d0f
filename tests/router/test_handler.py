"""The router Lambda end to end through ``lambda_handler``: real event JSON, a fake context,
moto for AWS and respx for the transcription server. No real sleeps, no network."""

from __future__ import annotations

import importlib
import io
import json
import logging
import threading
from typing import Any

import httpx
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from router import handler
from router.app import RouterApp
from router.errors import QueueSendError, ServerRejectedError
from tests.events.factories import load_event, manual_redrive, object_created
from tests.router.conftest import (
    API_KEY,
    API_KEY_PARAMETER,
    SERVER,
    AppFactory,
    Aws,
    Clock,
    FakeServer,
    invoke,
    invoke_concurrently,
)
from tests.support.log_safety import check_no_secret_in_debug_logs, store_secret
from tests.transcript_store.factories import BUCKET, chunk_transcript, manifest
from transcript_contracts.formats import render
from transcript_contracts.models import QueueMessage
from transcript_contracts.stitcher import stitch
from transcript_store import StorageError

# An invocation that raises publishes no metrics; Powertools warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

CHUNK = "audio/s1/chunk-0003.mp3"
TRANSCRIPT = "transcripts/s1/chunk-0003.json"


def chunk_event(aws: Aws, key: str = CHUNK, **kwargs: Any) -> dict[str, Any]:
    etag = aws.put_audio(key)
    return object_created(BUCKET, key, etag, **kwargs)


def emf_metrics(out: str) -> list[dict[str, Any]]:
    """The EMF blobs Powertools printed: one dict per blob (metric names → values)."""
    blobs = []
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        blobs.append(json.loads(line))
    return blobs


def _flat(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def metric_values(out: str, name: str) -> list[Any]:
    """Every value emitted for a metric, across blobs (EMF values may be lists)."""
    return [v for blob in emf_metrics(out) if name in blob for v in _flat(blob[name])]


# -- P3: skip ---------------------------------------------------------------------------------


def test_existing_transcript_is_skipped_without_calling_the_server(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    event = chunk_event(aws)
    aws.store.write_chunk_transcript(BUCKET, chunk_transcript("s1", 3), aws.layout)
    result = invoke(event, clock)
    assert result["status"] == "skipped"
    assert server.health.call_count == 0 and server.transcribe.call_count == 0
    assert aws.messages() == []
    assert metric_values(capsys.readouterr().out, "Skipped") == [1.0]


def test_forbidden_head_fails_loudly(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    event = chunk_event(aws)

    def forbidden(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        url = f"https://{BUCKET}.s3.amazonaws.com/{TRANSCRIPT}"
        http = AWSResponse(url, 403, HTTPHeaders(), None)
        return http, {
            "Error": {"Code": "403", "Message": "Forbidden"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }

    s3 = app.deps.store._s3
    s3.meta.events.register_first("before-call.s3.HeadObject", forbidden)  # type: ignore[arg-type]
    with pytest.raises(StorageError) as info:
        invoke(event, clock)
    assert info.value.status == 403
    assert server.transcribe.call_count == 0 and aws.messages() == []


# -- forward ------------------------------------------------------------------------------------


def test_healthy_server_gets_one_forward_with_body_and_key(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put_manifest("s1", 10, language="sv")
    result = invoke(chunk_event(aws), clock)
    assert result["status"] == "forwarded" and result["attempts"] == 1
    assert server.transcribe.call_count == 1
    request = server.transcribe.calls.last.request
    assert json.loads(request.content) == {
        "s3_input_path": f"s3://{BUCKET}/{CHUNK}",
        "s3_output_path": f"s3://{BUCKET}/{TRANSCRIPT}",
        "language": "sv",
    }
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert server.health.calls.last.request.headers.get("authorization") is None
    assert aws.exists(TRANSCRIPT)
    assert aws.messages() == []
    assert result["stitch"]["status"] == "incomplete"
    assert clock.sleeps == []
    assert metric_values(capsys.readouterr().out, "Forwarded") == [1.0]


def test_no_manifest_means_no_language_in_the_request(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    result = invoke(chunk_event(aws), clock)
    assert result["status"] == "forwarded"
    assert "language" not in json.loads(server.transcribe.calls.last.request.content)
    assert result["stitch"]["status"] == "no_manifest"


def test_503_then_200_is_forwarded_after_one_retry(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    server.plan = [503]
    result = invoke(chunk_event(aws), clock)
    assert (result["status"], result["attempts"]) == ("forwarded", 2)
    assert clock.sleeps == [1.0]
    assert server.transcribe.call_count == 2
    assert aws.messages() == []
    assert metric_values(capsys.readouterr().out, "Retries") == [1.0]


@pytest.mark.parametrize(
    "failure",
    [429, 502, 504, httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
    ids=["429", "502", "504", "connect-error", "read-timeout"],
)
def test_retryable_failures_are_retried(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, failure: int | Exception
) -> None:
    server.plan = [failure, failure]
    result = invoke(chunk_event(aws), clock)
    assert (result["status"], result["attempts"]) == ("forwarded", 3)
    assert clock.sleeps == [1.0, 2.0]


def test_always_503_sends_one_message_retries_exhausted(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    server.plan = [503] * 10
    event = chunk_event(aws)
    etag = event["detail"]["object"]["etag"]
    result = invoke(event, clock)
    assert (result["status"], result["reason"], result["attempts"]) == (
        "queued",
        "retries_exhausted",
        4,
    )
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert server.transcribe.call_count == 4
    messages = aws.messages()
    assert len(messages) == 1
    message = QueueMessage.model_validate(messages[0])
    assert (message.bucket, message.key, message.etag) == (BUCKET, CHUNK, etag)
    assert (message.session_id, message.chunk_index, message.reason) == (
        "s1",
        3,
        "retries_exhausted",
    )
    out = capsys.readouterr().out
    queued = [b for b in emf_metrics(out) if "Queued" in b]
    assert [(_flat(b["Queued"]), b["reason"]) for b in queued] == [([1.0], "retries_exhausted")]
    assert metric_values(out, "Retries") == [3.0]


@pytest.mark.parametrize("status", [400, 401, 403, 413, 415, 422, 500])
def test_other_server_errors_are_not_retried_and_fail_loudly(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, status: int
) -> None:
    server.plan = [status]
    with pytest.raises(ServerRejectedError) as info:
        invoke(chunk_event(aws), clock)
    assert info.value.status_code == status
    assert f"http_{status}: planned failure" in str(info.value)
    assert server.transcribe.call_count == 1
    assert clock.sleeps == []
    assert aws.messages() == []


# -- health (P6) and fallback (P4) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {**{"status": "loading", "model_loaded": False}}),
        (503, {"status": "busy", "model_loaded": True}),
        (200, {"status": "loading", "model_loaded": False}),
        (200, {"status": "busy", "model_loaded": True}),
        (200, {"status": "healthy", "model_loaded": False}),
        (500, {"error": {"code": "internal", "message": "x"}}),
    ],
)
def test_unhealthy_server_sends_one_message(
    aws: Aws,
    app: RouterApp,
    server: FakeServer,
    clock: Clock,
    status: int,
    body: dict[str, Any],
) -> None:
    server.health_status, server.health_body = status, body
    result = invoke(chunk_event(aws), clock)
    assert (result["status"], result["reason"]) == ("queued", "server_unhealthy")
    assert server.transcribe.call_count == 0
    assert [m["reason"] for m in aws.messages()] == ["server_unhealthy"]


def test_health_check_transport_error_is_unhealthy(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    server.health.side_effect = httpx.ConnectTimeout("no route")
    result = invoke(chunk_event(aws), clock)
    assert (result["status"], result["reason"]) == ("queued", "server_unhealthy")
    assert server.transcribe.call_count == 0


def test_health_check_has_a_short_explicit_timeout(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    invoke(chunk_event(aws), clock)
    health_timeout = server.health.calls.last.request.extensions["timeout"]
    assert health_timeout == {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}
    forward_timeout = server.transcribe.calls.last.request.extensions["timeout"]
    assert forward_timeout == {"connect": 1.0, "read": 10.0, "write": 1.0, "pool": 1.0}


def test_little_time_left_goes_straight_to_the_queue(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    # Health 1 s + one forward (1 + 1 + 10 s) + 5 s reserve = 18 s needed.
    result = invoke(chunk_event(aws), clock, budget_ms=17_000)
    assert (result["status"], result["reason"], result["attempts"]) == (
        "queued",
        "retries_exhausted",
        0,
    )
    assert server.health.call_count == 0 and server.transcribe.call_count == 0
    assert len(aws.messages()) == 1


def test_retries_stop_early_to_leave_room_for_the_queue_send(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    server.plan = [503] * 10
    # 20 s: try 1; 20-1-12 = 7 ≥ 5 → wait 1, try 2; 19-2-12 = 5 ≥ 5 → wait 2, try 3;
    # 17-4-12 = 1 < 5 → stop and queue.
    result = invoke(chunk_event(aws), clock, budget_ms=20_000)
    assert (result["status"], result["reason"], result["attempts"]) == (
        "queued",
        "retries_exhausted",
        3,
    )
    assert clock.sleeps == [1.0, 2.0]
    assert len(aws.messages()) == 1


def test_failed_queue_send_raises_and_a_retry_works(
    aws: Aws, make_app: AppFactory, server: FakeServer, clock: Clock
) -> None:
    missing = aws.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    make_app(queue_url=missing)
    server.health_status = 503
    event = chunk_event(aws)
    with pytest.raises(QueueSendError):
        invoke(event, clock)
    # The failure left no idempotency record behind: Lambda's retry does the work.
    make_app()
    result = invoke(event, clock)
    assert (result["status"], result["duplicate"]) == ("queued", False)
    assert len(aws.messages()) == 1


def test_force_queue_sends_everything_to_the_queue(
    aws: Aws, make_app: AppFactory, server: FakeServer, clock: Clock
) -> None:
    make_app(force_queue=True)
    result = invoke(chunk_event(aws), clock)
    assert (result["status"], result["reason"]) == ("queued", "forced")
    assert server.health.call_count == 0 and server.transcribe.call_count == 0
    assert [m["reason"] for m in aws.messages()] == ["forced"]


# -- P1: duplicates ---------------------------------------------------------------------------


def test_duplicate_deliveries_forward_once(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    event = chunk_event(aws)
    first = invoke(event, clock)
    # Same object, another event id and moto's shape of the event.
    again = object_created(
        BUCKET, CHUNK, event["detail"]["object"]["etag"], event_id="other", moto_shape=True
    )
    second = invoke(again, clock)
    third = invoke(event, clock)
    assert first["status"] == "forwarded" and not first["duplicate"]
    assert second["status"] == third["status"] == "forwarded"
    assert second["duplicate"] and third["duplicate"]
    assert server.transcribe.call_count == 1 and server.health.call_count == 1
    out = capsys.readouterr().out
    assert metric_values(out, "Forwarded") == [1.0]
    assert metric_values(out, "Duplicates") == [1.0, 1.0]


def test_duplicate_deliveries_queue_once(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    server.health_status = 503
    event = chunk_event(aws)
    for _ in range(3):
        assert invoke(event, clock)["status"] == "queued"
    assert len(aws.messages()) == 1


def test_concurrent_duplicates_forward_once(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    event = chunk_event(aws)
    one_returned = threading.Event()
    # The first forward blocks until the other delivery has returned: they truly overlap.
    server.after_write = lambda body: one_returned.wait(timeout=10)
    barrier = threading.Barrier(2)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        barrier.wait()
        try:
            results.append(invoke(event, clock))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            one_returned.set()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert server.transcribe.call_count == 1
    assert sorted(r["status"] for r in results) == ["duplicate", "forwarded"]
    assert aws.messages() == []


def test_new_etag_is_processed_again(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    server.health_status = 503
    first = chunk_event(aws)
    invoke(first, clock)
    etag = aws.put_audio(CHUNK, b"other audio bytes")  # a re-upload: new bytes, new etag
    assert etag != first["detail"]["object"]["etag"]
    result = invoke(object_created(BUCKET, CHUNK, etag), clock)
    assert (result["status"], result["duplicate"]) == ("queued", False)
    assert [m["etag"] for m in aws.messages()] == [first["detail"]["object"]["etag"], etag]


# -- manual re-drive ----------------------------------------------------------------------------


def test_manual_redrive_reads_the_etag_and_forwards(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    etag = aws.put_audio(CHUNK)
    result = invoke(manual_redrive(BUCKET, CHUNK), clock)
    assert (result["status"], result["etag"]) == ("forwarded", etag)
    # The same object via EventBridge is now a duplicate.
    again = invoke(object_created(BUCKET, CHUNK, etag), clock)
    assert again["duplicate"] is True
    assert server.transcribe.call_count == 1


def test_forced_redrive_bypasses_the_duplicate_record(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    server.health_status = 503
    event = chunk_event(aws)
    invoke(event, clock)
    assert invoke(manual_redrive(BUCKET, CHUNK), clock)["duplicate"] is True
    forced = invoke(manual_redrive(BUCKET, CHUNK, force=True), clock)
    assert (forced["status"], forced["duplicate"]) == ("queued", False)
    assert len(aws.messages()) == 2


def test_redrive_of_a_missing_object_is_ignored(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    result = invoke(manual_redrive(BUCKET, "audio/s1/chunk-0009.mp3"), clock)
    assert result["status"] == "ignored" and "does not exist" in result["reason"]


# -- P2: what is not ours -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("audio/s1/notes.txt", "name must be chunk-{index}.{ext} or manifest.json"),
        ("audio/s1/chunk-1.exe", "wrong extension"),
        ("transcripts/s1/chunk-0001.json", "transcript, not an audio chunk"),
        ("transcripts/s1/session.json", "transcript, not an audio chunk"),
        ("other/s1/chunk-1.mp3", "under neither"),
        ("audio/../etc/chunk-1.mp3", "traversal"),
        ("audio/s1/chunk-1.mp3%00", "outside [A-Za-z0-9/_.-]"),
        ("audio/s 1/chunk-1.mp3", "outside [A-Za-z0-9/_.-]"),
        ("audio/s1/sub/chunk-1.mp3", "expected {prefix}{session_id}/{name}"),
        ("example-key", "under neither"),
    ],
)
def test_keys_outside_the_grammar_are_ignored_with_a_reason(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, key: str, reason: str
) -> None:
    result = invoke(object_created(BUCKET, key, "etag"), clock)
    assert result["status"] == "ignored"
    assert reason in result["reason"]
    assert server.health.call_count == 0 and aws.messages() == []


def test_other_buckets_are_ignored(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    result = invoke(object_created("someone-elses-bucket", CHUNK, "etag"), clock)
    assert result["status"] == "ignored" and "not BUCKET_NAME" in result["reason"]


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {}}},
        {"detail-type": "Object Deleted", "source": "aws.s3", "detail": {}},
        {"hello": "world"},
        [],
        "x",
        None,
    ],
)
def test_malformed_events_never_raise(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, event: Any
) -> None:
    result = invoke(event, clock)
    assert result["status"] == "ignored" and result["reason"]


def test_documentation_sample_is_ignored_without_raising(
    aws: Aws,
    app: RouterApp,
    server: FakeServer,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    router_logs: io.StringIO,
) -> None:
    result = invoke(load_event("s3_object_created.json"), clock)
    assert result["status"] == "ignored"
    logged = [json.loads(line) for line in router_logs.getvalue().splitlines()]
    assert [(r["level"], r["message"]) for r in logged] == [
        ("WARNING", "event ignored: bucket 'amzn-s3-demo-bucket1' is not BUCKET_NAME")
    ]
    assert logged[0]["correlation_id"] == "s3://amzn-s3-demo-bucket1/example-key"
    assert metric_values(capsys.readouterr().out, "Ignored") == [1.0]


# -- P8: stitching ----------------------------------------------------------------------------


def expected_session(session_id: str, chunk_count: int) -> dict[str, bytes]:
    """What a serial run writes: the stitcher over the chunk transcripts the server wrote."""
    session = stitch(
        manifest(session_id, chunk_count),
        [chunk_transcript(session_id, i, etag="e") for i in range(chunk_count)],
    )
    return {fmt: render(session, fmt) for fmt in ("json", "txt", "srt", "vtt")}


def normalise(aws: Aws, data: bytes) -> bytes:
    """Chunk transcripts carry each upload's etag; make them comparable."""
    doc = json.loads(data)
    for chunk in doc["chunks"]:
        chunk["source"]["etag"] = "e"
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()


def session_files(aws: Aws, session_id: str) -> dict[str, bytes]:
    found = {}
    for fmt in ("json", "txt", "srt", "vtt"):
        key = f"transcripts/{session_id}/session.{fmt}"
        if aws.exists(key):
            found[fmt] = aws.read(key)
    return found


def put_same_audio(aws: Aws, session_id: str, index: int) -> dict[str, Any]:
    key = f"audio/{session_id}/chunk-{index}.mp3"
    return object_created(BUCKET, key, aws.put_audio(key, b"same"))


def test_last_chunk_stitches_the_session(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put_manifest("s2", 2)
    events = [put_same_audio(aws, "s2", i) for i in range(2)]
    assert invoke(events[0], clock)["stitch"]["status"] == "incomplete"
    last = invoke(events[1], clock)
    assert last["stitch"]["status"] == "stitched"
    files = session_files(aws, "s2")
    assert set(files) == {"json", "txt", "srt", "vtt"}
    expected = expected_session("s2", 2)
    assert normalise(aws, files["json"]) == expected["json"]
    assert files["txt"] == expected["txt"] and files["vtt"] == expected["vtt"]
    assert metric_values(capsys.readouterr().out, "Stitched") == [1.0]


def test_stitch_race_writes_exactly_one_session(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    aws.put_manifest("s3", 4)
    for i in (0, 1):
        aws.store.write_chunk_transcript(
            BUCKET,
            chunk_transcript("s3", i, etag=aws.put_audio(f"audio/s3/chunk-{i}.mp3", b"same")),
            aws.layout,
        )
    events = [put_same_audio(aws, "s3", i) for i in (2, 3)]
    both_written = threading.Barrier(2, timeout=10)
    # Each forward returns only when both chunk transcripts exist: both then see a complete
    # session and stitch at the same instant.
    server.after_write = lambda body: both_written.wait()
    results = invoke_concurrently(events, clock)
    assert sorted(r["stitch"]["status"] for r in results) == ["already_stitched", "stitched"]
    files = session_files(aws, "s3")
    expected = expected_session("s3", 4)
    assert normalise(aws, files["json"]) == expected["json"]
    assert {f: files[f] for f in ("txt", "srt", "vtt")} == {
        f: expected[f] for f in ("txt", "srt", "vtt")
    }


def test_manifest_arriving_last_triggers_the_stitch(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    for i in range(3):
        result = invoke(put_same_audio(aws, "s4", i), clock)
        assert result["stitch"]["status"] == "no_manifest"
    manifest_key = aws.put_manifest("s4", 3)
    result = invoke(object_created(BUCKET, manifest_key, "m-etag"), clock)
    assert (result["status"], result["stitch"]["status"]) == ("manifest_checked", "stitched")
    assert normalise(aws, session_files(aws, "s4")["json"]) == expected_session("s4", 3)["json"]
    # The manifest's duplicate delivery finds it done.
    again = invoke(object_created(BUCKET, manifest_key, "m-etag"), clock)
    assert again["stitch"]["status"] == "already_stitched"
    assert server.transcribe.call_count == 3


def test_manifest_arriving_during_the_last_forward_still_stitches(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    # Chunk 0 is done; chunk 1 is being transcribed when the manifest lands. The manifest's
    # event sees chunk 1 missing; the chunk's own stitch check must read the manifest again.
    aws.store.write_chunk_transcript(BUCKET, chunk_transcript("s10", 0), aws.layout)
    manifest_results: list[dict[str, Any]] = []

    def manifest_lands(body: dict[str, Any]) -> None:
        key = aws.put_manifest("s10", 2)
        manifest_results.append(invoke(object_created(BUCKET, key, "m"), clock))

    server.before_write = manifest_lands
    result = invoke(put_same_audio(aws, "s10", 1), clock)
    assert manifest_results[0]["stitch"]["status"] == "incomplete"
    assert manifest_results[0]["stitch"]["missing"] == [1]
    # The chunk knows its own transcript exists: no probe, straight to the listing.
    assert result["stitch"]["status"] == "stitched"
    assert set(session_files(aws, "s10")) == {"json", "txt", "srt", "vtt"}


def test_manifest_before_the_chunks_waits(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    manifest_key = aws.put_manifest("s5", 2)
    result = invoke(object_created(BUCKET, manifest_key, "m"), clock)
    # The last chunk's transcript is absent: incomplete without listing the session.
    assert result["stitch"] == {
        "status": "incomplete",
        "session_id": "s5",
        "missing": [1],
        "missing_count": None,
        "written": [],
    }


def test_huge_sessions_keep_the_stored_result_small(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    # The outcome is stored in DynamoDB (400 KB item limit): missing chunks are capped.
    aws.put_manifest("big", 100_000)
    aws.store.write_chunk_transcript(BUCKET, chunk_transcript("big", 99_999), aws.layout)
    result = invoke(put_same_audio(aws, "big", 7), clock)
    assert result["status"] == "forwarded"
    assert result["stitch"]["missing_count"] == 99_998
    assert len(result["stitch"]["missing"]) == 20
    assert len(json.dumps(result)) < 1000


def test_invalid_manifest_is_reported_not_retried(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.s3.put_object(Bucket=BUCKET, Key="audio/s6/manifest.json", Body=b"{not json")
    result = invoke(object_created(BUCKET, "audio/s6/manifest.json", "m"), clock)
    assert result["status"] == "manifest_checked" and result["stitch"] is None
    assert "not a valid document" in result["stitch_error"]
    # A chunk of that session is still forwarded (no language from the manifest).
    chunk = invoke(put_same_audio(aws, "s6", 0), clock)
    assert chunk["status"] == "forwarded" and chunk["stitch_error"]
    assert metric_values(capsys.readouterr().out, "StitchFailed") == [1.0, 1.0]


def test_skip_heals_a_stitch_that_never_ran(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    aws.put_manifest("s7", 1)
    aws.store.write_chunk_transcript(BUCKET, chunk_transcript("s7", 0), aws.layout)
    result = invoke(put_same_audio(aws, "s7", 0), clock)
    assert (result["status"], result["stitch"]["status"]) == ("skipped", "stitched")


# -- secrets ----------------------------------------------------------------------------------


def test_api_key_never_appears_in_logs_or_results(
    aws: Aws,
    app: RouterApp,
    server: FakeServer,
    clock: Clock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    router_logs: io.StringIO,
) -> None:
    handler.logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        results = [invoke(chunk_event(aws, "audio/s8/chunk-0.mp3"), clock)]
        server.plan = [503] * 10
        results.append(invoke(chunk_event(aws, "audio/s8/chunk-1.mp3"), clock))
        server.plan = [401]
        with pytest.raises(ServerRejectedError) as info:
            invoke(chunk_event(aws, "audio/s8/chunk-2.mp3"), clock)
    finally:
        handler.logger.setLevel("INFO")
    logs = router_logs.getvalue() + capsys.readouterr().out + caplog.text
    assert "forward attempt 1 failed" in router_logs.getvalue()  # the capture saw the logs
    assert "HTTP Request: POST" in caplog.text  # and httpx's own
    assert API_KEY not in logs
    assert API_KEY not in json.dumps(results) + str(info.value) + repr(app.deps.api_key)


def test_log_level_debug_never_prints_a_secret_read_from_ssm(
    aws: Aws,
    app: RouterApp,
    server: FakeServer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    router_logs: io.StringIO,
) -> None:
    # The handler's import is the router's one logging setup: run it again on a botocore
    # logger left at NOTSET, as a fresh Lambda container has it, then route at DEBUG.
    logging.getLogger("botocore").setLevel(logging.NOTSET)
    importlib.reload(handler)
    handler.set_app(app)
    handler.logger.setLevel("DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        assert invoke(chunk_event(aws, "audio/s8/chunk-5.mp3"), clock)["status"] == "forwarded"

        def logs() -> str:
            return router_logs.getvalue() + caplog.text

        assert API_KEY not in logs()  # the server key, read from SSM for the forward
        check_no_secret_in_debug_logs(store_secret(), logs)
    finally:
        handler.logger.setLevel("INFO")


def test_api_key_read_from_ssm_once_per_container(
    aws: Aws, app: RouterApp, server: FakeServer, clock: Clock
) -> None:
    calls: list[str] = []
    ssm = app.deps.api_key._ssm()
    ssm.meta.events.register("before-call.ssm.GetParameter", lambda **kw: calls.append("get"))
    for i in range(3):
        invoke(chunk_event(aws, f"audio/s9/chunk-{i}.mp3"), clock)
    assert calls == ["get"]
    assert server.transcribe.call_count == 3


def test_server_url_from_the_tagged_ec2_instance(
    aws: Aws, make_app: AppFactory, clock: Clock
) -> None:
    import boto3

    ec2 = boto3.client("ec2", region_name="eu-north-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reservation = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "transcriber"}]}
        ],
    )
    ip = reservation["Instances"][0]["PrivateIpAddress"]
    make_app(server_url=None, server_instance_tag="transcriber", server_port=8123)
    with server_at(f"http://{ip}:8123") as routes:
        result = invoke(chunk_event(aws), clock)
        assert routes.calls.call_count == 2  # health + forward, both at the instance's IP
    assert result["status"] == "forwarded"
    # Without a running tagged instance the server is down: queued.
    ec2.terminate_instances(InstanceIds=[reservation["Instances"][0]["InstanceId"]])
    make_app(server_url=None, server_instance_tag="transcriber")
    result = invoke(chunk_event(aws, "audio/s1/chunk-0004.mp3"), clock)
    assert (result["status"], result["reason"]) == ("queued", "server_unhealthy")


def server_at(base: str) -> Any:
    import respx

    mock = respx.mock(assert_all_called=True)
    mock.get(f"{base}/health").respond(200, json={"status": "healthy", "model_loaded": True})
    mock.post(f"{base}/transcribe-s3").respond(200, json={"transcription": ""})
    return mock


def settings_env(monkeypatch: pytest.MonkeyPatch, aws: Aws, **values: str) -> None:
    """The router's settings in the environment, as Lambda gives them, plus ``values``."""
    base = {
        "BUCKET_NAME": BUCKET,
        "QUEUE_URL": aws.queue_url,
        "SERVER_URL": SERVER,
        "IDEMPOTENCY_TABLE": "router-idempotency-test",
    }
    for name, value in {**base, **values}.items():
        monkeypatch.setenv(name, value)


def test_settings_are_loaded_from_the_environment_once(
    aws: Aws, server: FakeServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_env(monkeypatch, aws, API_KEY=API_KEY)
    handler.set_app(None)
    try:
        result = invoke(chunk_event(aws), clock)
        assert result["status"] == "forwarded"
        assert handler.get_app() is handler.get_app()
    finally:
        handler.set_app(None)


def test_empty_api_key_from_step_000_means_the_key_is_read_from_ssm(
    aws: Aws, server: FakeServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scripts/step-000 writes `API_KEY=` (empty) next to API_KEY_PARAMETER: an empty key must
    # not be sent, the one in SSM must.
    settings_env(monkeypatch, aws, API_KEY="", API_KEY_PARAMETER=API_KEY_PARAMETER)
    handler.set_app(None)
    try:
        assert invoke(chunk_event(aws), clock)["status"] == "forwarded"
    finally:
        handler.set_app(None)
    request = server.transcribe.calls.last.request
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


def test_missing_settings_fail_fast_naming_them(clock: Clock) -> None:
    from transcript_contracts.errors import SettingsError

    handler.set_app(None)
    with pytest.raises(SettingsError, match="BUCKET_NAME is required"):
        invoke(object_created(BUCKET, CHUNK, "e"), clock)
