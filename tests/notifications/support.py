"""Test helpers for notifications: an EventBridge rule → SQS queue that observes the events
(moto delivers EventBridge events to SQS targets only), a URL policy that admits a loopback
receiver, and a signature-checking webhook receiver."""

from __future__ import annotations

import ipaddress
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mypy_boto3_events import EventBridgeClient
from mypy_boto3_sqs import SQSClient
from werkzeug import Request, Response

from notifications import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    EVENT_SOURCE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    verify_signature,
)
from transcript_contracts.url_safety import CheckedUrl

SECRET = "whsec-test-0d9f3b1e-never-log-me"


@dataclass
class EventObserver:
    """A rule on ``bus`` matching every event of our source, delivering to an SQS queue."""

    sqs: SQSClient
    queue_url: str

    @classmethod
    def create(
        cls, events: EventBridgeClient, sqs: SQSClient, bus: str = "default"
    ) -> EventObserver:
        if bus != "default":
            events.create_event_bus(Name=bus)
        queue_url = sqs.create_queue(QueueName=f"observed-{bus}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name=f"observe-{bus}",
            EventBusName=bus,
            EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
        )
        events.put_targets(
            Rule=f"observe-{bus}", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}]
        )
        return cls(sqs, queue_url)

    def events(self) -> list[dict[str, Any]]:
        """Every event delivered so far (each received and deleted: call once per check)."""
        found: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                return found
            for message in got:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


def loopback_policy(url: str) -> CheckedUrl:
    """Admits the local test receiver (http, 127.0.0.1), which P17 rightly refuses."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return CheckedUrl(
        url=url,
        host=host,
        port=parts.port or 80,
        address=ipaddress.ip_address("127.0.0.1"),
        scheme=parts.scheme,
    )


@dataclass
class Receiver:
    """A webhook endpoint: answers the planned statuses first, then verifies the signature
    (401 when it does not verify) and accepts (200). ``clock``: the receiver's time."""

    plan: list[int] = field(default_factory=list)
    secret: str = SECRET
    tolerance_s: float = 300.0
    clock: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Request) -> Response:
        raw = request.get_data()
        seen = {
            "body": raw,
            "timestamp": request.headers.get(TIMESTAMP_HEADER, ""),
            "signature": request.headers.get(SIGNATURE_HEADER, ""),
            "event": request.headers.get(EVENT_HEADER, ""),
            "event_id": request.headers.get(EVENT_ID_HEADER, ""),
            "host": request.headers.get("Host", ""),
        }
        with self.lock:
            self.requests.append(seen)
            if self.plan:
                return Response("planned failure", status=self.plan.pop(0))
        status = self.check(seen)
        return Response("ok" if status == 200 else "bad signature", status=status)

    def check(self, seen: dict[str, Any]) -> int:
        try:
            verify_signature(
                self.secret,
                seen["timestamp"],
                seen["body"],
                seen["signature"],
                self.tolerance_s,
                now=lambda: self.clock,
            )
        except SignatureError as exc:
            with self.lock:
                self.rejected.append(type(exc).__name__)
            return 401
        with self.lock:
            self.accepted.append(json.loads(seen["body"]))
        return 200
