"""The local Lambda runtime keeps Lambda's asynchronous-invocation contract."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from smart_router.local.lambda_runtime import Invocation, LocalLambda

REGION = "eu-north-1"
EVENT = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "detail": {"bucket": {"name": "b"}, "object": {"key": "audio/s/chunk-0.wav"}},
}


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def _run(
    sqs: Any, handler: Any, *, expected: int, duplicate_probability: float = 0.0
) -> tuple[list[Invocation], str, str]:
    events = sqs.create_queue(QueueName="events")["QueueUrl"]
    failures = sqs.create_queue(QueueName="failures")["QueueUrl"]
    done: list[Invocation] = []
    finished = threading.Event()

    def record(invocation: Invocation) -> None:
        done.append(invocation)
        if len(done) >= expected:
            finished.set()

    runtime = LocalLambda(
        sqs=sqs,
        event_queue_url=events,
        failure_queue_url=failures,
        handler=handler,
        region=REGION,
        retry_delays_s=(0.01, 0.01),
        duplicate_probability=duplicate_probability,
        on_invocation=record,
    )
    sqs.send_message(QueueUrl=events, MessageBody=json.dumps(EVENT))
    runtime.start()
    try:
        assert finished.wait(20), "the runtime did not invoke the handler"
        time.sleep(0.2)
    finally:
        runtime.stop()
    return done, events, failures


def test_success_is_invoked_once_and_the_event_deleted(sqs: Any) -> None:
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        assert 0 < context.get_remaining_time_in_millis() <= 60_000
        return {"status": "forwarded"}

    done, events, failures = _run(sqs, handler, expected=1)
    assert seen == [EVENT]
    assert [d.result for d in done] == [{"status": "forwarded"}]
    attributes = sqs.get_queue_attributes(QueueUrl=events, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert "Messages" not in sqs.receive_message(QueueUrl=failures)


def test_an_error_is_retried_twice_then_sent_to_the_failure_destination(sqs: Any) -> None:
    calls: list[str] = []

    class RejectedError(Exception):
        pass

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(context.aws_request_id)
        raise RejectedError("server rejected the chunk with HTTP 415")

    done, _, failures = _run(sqs, handler, expected=1)
    assert len(calls) == 3
    assert len(set(calls)) == 3  # a fresh context per attempt, as Lambda gives
    assert done[0].error == "RejectedError: server rejected the chunk with HTTP 415"
    record = json.loads(sqs.receive_message(QueueUrl=failures)["Messages"][0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == EVENT
    assert record["responsePayload"] == {
        "errorMessage": "server rejected the chunk with HTTP 415",
        "errorType": "RejectedError",
    }


def test_duplicate_delivery_gives_the_same_event_with_a_new_id(sqs: Any) -> None:
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"status": "forwarded"}

    done, _, _ = _run(sqs, handler, expected=2, duplicate_probability=1.0)
    assert len(seen) == 2  # a duplicate is never duplicated again
    assert seen[0]["id"] != seen[1]["id"]
    assert {k: v for k, v in seen[0].items() if k != "id"} == {
        k: v for k, v in seen[1].items() if k != "id"
    }
    assert sorted(d.duplicate_delivery for d in done) == [False, True]
