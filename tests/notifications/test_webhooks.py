"""Signed webhooks against a local receiver (pytest-httpserver) that verifies every request:
retries with backoff on 5xx and transport errors and no duplicate after success, replays and
tampered bodies rejected, final answers not retried, SSRF rules applied, failures recorded and
never raised."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from pytest_httpserver import HTTPServer

from notifications import (
    SESSION_TRANSCRIBED,
    DeliveryFailureRecord,
    WebhookDeliveryError,
    WebhookRefusedError,
    WebhookRejectedError,
    WebhookSender,
)
from notifications.webhooks import describe_destination
from tests.notifications.conftest import SECRET_PARAMETER, SENDER_NOW, Aws, NotifierFactory
from tests.notifications.support import SECRET, Receiver, loopback_policy
from tests.support.slow_http import TrickleServer
from tests.transcript_store.factories import BUCKET
from transcript_contracts.url_safety import CheckedUrl, UnsafeUrlError, check_url


def records(aws: Aws, session_id: str) -> list[DeliveryFailureRecord]:
    return [
        DeliveryFailureRecord.model_validate_json(aws.read(key))
        for key in aws.keys(f"transcripts/{session_id}/failures/delivery-")
    ]


def test_fails_twice_then_accepts_once(
    aws: Aws, make_notifier: NotifierFactory, receiver: Receiver, hook_url: str, sleeps: list[float]
) -> None:
    receiver.plan = [503, 500]
    outcome = aws.stitched_session("w1")
    make_notifier(webhook_url=hook_url, backoff_s=0.25).session_stitched(outcome)

    assert len(receiver.requests) == 3
    assert sleeps == [0.25, 0.5]  # exponential backoff, injected sleeper
    (accepted,) = receiver.accepted  # no duplicate after the success
    (event,) = aws.observer.events()
    assert accepted == event["detail"]  # the body is the event's detail
    first, *_, last = receiver.requests
    assert last["event"] == SESSION_TRANSCRIBED
    assert last["event_id"] == accepted["event_id"]
    assert last["host"].startswith("localhost:")
    assert first["body"] == last["body"]
    assert records(aws, "w1") == []


def test_replayed_and_tampered_requests_are_rejected(
    aws: Aws, make_notifier: NotifierFactory, receiver: Receiver, hook_url: str
) -> None:
    make_notifier(webhook_url=hook_url).session_stitched(aws.stitched_session("w2"))
    (delivered,) = receiver.requests
    assert receiver.check(delivered) == 200

    receiver.clock = SENDER_NOW + receiver.tolerance_s + 1  # the same request, replayed later
    assert receiver.check(delivered) == 401
    receiver.clock = SENDER_NOW
    tampered = {**delivered, "body": delivered["body"].replace(b'"w2"', b'"w3"')}
    assert receiver.check(tampered) == 401
    resigned = {**delivered, "timestamp": str(int(SENDER_NOW) + 100)}
    assert receiver.check(resigned) == 401
    assert receiver.rejected == [
        "StaleTimestampError",
        "SignatureMismatchError",
        "SignatureMismatchError",
    ]


def test_wrong_key_is_refused_by_the_receiver_and_not_retried(
    aws: Aws, make_notifier: NotifierFactory, receiver: Receiver, hook_url: str, sleeps: list[float]
) -> None:
    make_notifier(webhook_url=hook_url, secret="another-key").chunk_failed(
        BUCKET, "audio/w4/chunk-0.mp3", "undecodable"
    )
    assert receiver.rejected == ["SignatureMismatchError"]
    assert (len(receiver.requests), sleeps) == (1, [])
    (record,) = records(aws, "w4")
    assert (record.target, record.attempts, record.detail_type) == ("webhook", 1, "Chunk Failed")
    assert "HTTP 401 (not retried)" in record.error
    assert record.destination == describe_destination(hook_url)


def test_gives_up_after_the_attempts_and_records_it(
    aws: Aws, make_notifier: NotifierFactory, receiver: Receiver, hook_url: str, sleeps: list[float]
) -> None:
    receiver.plan = [502, 503, 500, 500]
    make_notifier(webhook_url=hook_url, max_attempts=3).session_stitched(aws.stitched_session("w5"))
    assert len(receiver.requests) == 3 and receiver.accepted == []
    (record,) = records(aws, "w5")
    assert record.attempts == 3 and "HTTP 500" in record.error
    # The record carries the detail so it can be re-sent by hand; the event itself went out.
    (event,) = aws.observer.events()
    assert record.detail.model_dump(mode="json") == event["detail"]
    assert len(sleeps) == 2


def test_transport_errors_are_retried(sleeps: list[float]) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(204)

    sender = WebhookSender(
        timeout_s=1.0,
        max_attempts=4,
        backoff_s=0.1,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        check=lambda url: check_url(url, lambda host, port: ["93.184.215.14"]),
        sleep=sleeps.append,
        clock=lambda: SENDER_NOW,
    )
    delivery = sender.deliver(
        "https://hooks.example.com/t?token=abc",
        secret=SECRET,
        detail_type=SESSION_TRANSCRIBED,
        event_id="e1",
        body=b"{}",
    )
    assert (delivery.attempts, delivery.status_code, sleeps) == (3, 204, [0.1, 0.2])
    # Sent to the checked address; the name travels in Host (and SNI for TLS).
    assert str(calls[-1].url) == "https://93.184.215.14/t?token=abc"
    assert calls[-1].headers["Host"] == "hooks.example.com"
    assert calls[-1].extensions["sni_hostname"] == "hooks.example.com"
    assert delivery.destination == "https://hooks.example.com"  # no path, no token


def test_redirects_are_final_and_not_followed(sleeps: list[float]) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/"})

    sender = WebhookSender(
        timeout_s=1.0,
        max_attempts=3,
        backoff_s=0.1,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        check=loopback_policy,
        sleep=sleeps.append,
    )
    with pytest.raises(WebhookRejectedError, match="HTTP 302") as info:
        sender.deliver("http://localhost/x", secret="k", detail_type="d", event_id="e", body=b"")
    assert (len(calls), info.value.attempts, sleeps) == (1, 1, [])


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("http://hooks.example.com/t", ["93.184.215.14"]),
        ("https://user:pw@hooks.example.com/t", ["93.184.215.14"]),
        ("https://hooks.example.com/t", ["10.0.0.5"]),
        ("https://metadata.example.com/t", ["169.254.169.254"]),
        ("https://rebind.example.com/t", ["93.184.215.14", "127.0.0.1"]),
        ("https://[::ffff:127.0.0.1]/t", []),
        ("https://127.0.0.1:8443/t", []),
    ],
)
def test_callback_urls_follow_the_ssrf_rules(
    aws: Aws, make_notifier: NotifierFactory, url: str, resolved: list[str]
) -> None:
    def policy(candidate: str) -> CheckedUrl:
        return check_url(candidate, lambda host, port: resolved)

    with pytest.raises(UnsafeUrlError):
        policy(url)
    outcome = aws.stitched_session("w6", callback_url=url)
    make_notifier(check=policy).session_stitched(outcome)  # never raises
    (record,) = records(aws, "w6")
    assert (record.target, record.attempts) == ("callback", 0)
    assert "callback URL refused" in record.error
    assert [e["detail-type"] for e in aws.observer.events()] == [SESSION_TRANSCRIBED]


def test_refused_url_raises_a_typed_error() -> None:
    sender = WebhookSender(timeout_s=1.0, max_attempts=1, backoff_s=0.0)
    with pytest.raises(WebhookRefusedError, match="only https"):
        sender.deliver("http://x.example/", secret="k", detail_type="d", event_id="e", body=b"")


def test_manifest_callback_and_global_webhook_both_receive(
    aws: Aws, make_notifier: NotifierFactory, httpserver: HTTPServer, receiver: Receiver
) -> None:
    other = Receiver(clock=SENDER_NOW)
    httpserver.expect_request("/session-hook", method="POST").respond_with_handler(other.handle)
    callback = httpserver.url_for("/session-hook")
    outcome = aws.stitched_session("w7", callback_url=callback)
    make_notifier(webhook_url=httpserver.url_for("/hooks/transcripts")).session_stitched(outcome)
    assert [a["session_id"] for a in receiver.accepted] == ["w7"]
    assert [a["session_id"] for a in other.accepted] == ["w7"]
    assert receiver.accepted[0]["event_id"] == other.accepted[0]["event_id"]


def test_no_signing_key_means_no_webhooks(
    aws: Aws, make_notifier: NotifierFactory, receiver: Receiver, hook_url: str
) -> None:
    outcome = aws.stitched_session("w8", callback_url=hook_url)
    make_notifier(secret=None).session_stitched(outcome)
    assert receiver.requests == []
    assert [e["detail"]["session_id"] for e in aws.observer.events()] == ["w8"]


def test_signing_key_from_ssm(
    aws: Aws, make_notifier: NotifierFactory, receiver: Receiver, hook_url: str
) -> None:
    notifier = make_notifier(webhook_url=hook_url, secret=None, parameter=SECRET_PARAMETER)
    notifier.chunk_failed(BUCKET, "audio/w9/chunk-1.mp3", "undecodable")
    notifier.chunk_failed(BUCKET, "audio/w9/chunk-2.mp3", "undecodable")
    assert [a["chunk_index"] for a in receiver.accepted] == [1, 2]


def test_missing_ssm_parameter_is_recorded(
    aws: Aws, make_notifier: NotifierFactory, receiver: Receiver, hook_url: str
) -> None:
    notifier = make_notifier(webhook_url=hook_url, secret=None, parameter="/no/such/parameter")
    notifier.chunk_failed(BUCKET, "audio/w10/chunk-1.mp3", "undecodable")
    assert receiver.requests == []
    (record,) = records(aws, "w10")
    assert "/no/such/parameter" in record.error and SECRET not in record.error


def test_executor_mode_delivers_in_the_background(
    aws: Aws, make_notifier: NotifierFactory, receiver: Receiver, hook_url: str
) -> None:
    receiver.plan = [503]
    with ThreadPoolExecutor(max_workers=1) as pool:
        notifier = make_notifier(webhook_url=hook_url, executor=pool)
        notifier.session_stitched(aws.stitched_session("w11"))
        assert notifier.wait_for_deliveries(timeout_s=10) == 0
    assert [a["session_id"] for a in receiver.accepted] == ["w11"]
    assert len(receiver.requests) == 2


def test_body_is_exactly_the_signed_detail(
    aws: Aws, make_notifier: NotifierFactory, receiver: Receiver, hook_url: str
) -> None:
    make_notifier(webhook_url=hook_url).session_stitched(aws.stitched_session("w12"))
    (request,) = receiver.requests
    assert json.loads(request["body"])["transcript_keys"]["json"] == "transcripts/w12/session.json"
    assert request["signature"].startswith("v1=") and request["timestamp"] == str(int(SENDER_NOW))


def test_a_receiver_trickling_its_headers_meets_the_attempt_deadline(sleeps: list[float]) -> None:
    # One header line every 0.2 s for 6 s: no single read waits 1 s, only a deadline ends it.
    sender = WebhookSender(
        timeout_s=1.0, max_attempts=2, backoff_s=0.1, check=loopback_policy, sleep=sleeps.append
    )
    with TrickleServer(interval_s=0.2, duration_s=6.0) as slow:
        started = time.monotonic()
        with pytest.raises(WebhookDeliveryError, match="Timeout") as info:
            sender.deliver(
                f"http://localhost:{slow.port}/hook",
                secret=SECRET,
                detail_type=SESSION_TRANSCRIBED,
                event_id="e-slow",
                body=b"{}",
            )
        elapsed = time.monotonic() - started
    assert elapsed < 3.5, f"two 1 s attempts took {elapsed:.1f} s"
    assert (info.value.attempts, len(slow.requests), sleeps) == (2, 2, [0.1])


@pytest.mark.parametrize(
    "url",
    [
        "https://\uff11\uff12\uff17.0.0.1/hook",  # full-width digits: str.isalnum() passed them
        "https://\uff45xample.com/hook",
        "https://[::a9fe:a9fe]/hook",  # IPv4-compatible 169.254.169.254
        "https://[64:ff9b:1::a9fe:a9fe]/hook",
    ],
)
def test_hostile_callback_urls_are_recorded_never_raised(
    aws: Aws, make_notifier: NotifierFactory, url: str
) -> None:
    sent: list[httpx.Request] = []

    def policy(candidate: str) -> CheckedUrl:
        return check_url(candidate, lambda host, port: ["93.184.215.14"])

    def no_network(request: httpx.Request) -> httpx.Response:
        sent.append(request)  # a URL the policy let through: recorded, never connected to
        return httpx.Response(204)

    notifier = make_notifier(check=policy)
    notifier._webhooks = WebhookSender(  # the same policy, a client that never connects
        timeout_s=1.0,
        max_attempts=1,
        backoff_s=0.0,
        client=httpx.Client(transport=httpx.MockTransport(no_network)),
        check=policy,
    )
    notifier.session_stitched(aws.stitched_session("w13", callback_url=url))  # never raises
    assert sent == []
    (record,) = records(aws, "w13")
    assert (record.target, record.attempts) == ("callback", 0)
    assert "callback URL refused" in record.error and "(rule " in record.error


def test_a_broken_url_policy_is_recorded_not_raised_into_the_caller(
    aws: Aws, make_notifier: NotifierFactory
) -> None:
    def broken(candidate: str) -> CheckedUrl:
        raise LookupError("a bug in a URL policy")

    outcome = aws.stitched_session("w14", callback_url="https://hooks.example.com/t")
    make_notifier(check=broken).session_stitched(outcome)  # never raises
    (record,) = records(aws, "w14")
    assert record.target == "callback" and "LookupError" in record.error
    assert [e["detail-type"] for e in aws.observer.events()] == [SESSION_TRANSCRIBED]
