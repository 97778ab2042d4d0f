"""Notifications test rig: moto S3, EventBridge (observed through a rule → SQS queue), SQS and
SSM; a local signature-checking webhook receiver (pytest-httpserver); fake sleep and clocks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import boto3
import botocore.session
import httpx
import pytest
from moto import mock_aws
from mypy_boto3_events import EventBridgeClient
from mypy_boto3_s3 import S3Client
from mypy_boto3_sqs import SQSClient
from mypy_boto3_ssm import SSMClient
from pytest_httpserver import HTTPServer

from notifications import EventPublisher, Notifier, WebhookSecretSource, WebhookSender
from notifications.webhooks import UrlChecker
from tests.notifications.support import SECRET, EventObserver, Receiver, loopback_policy
from tests.support.settings import clear_settings_env
from tests.transcript_store.factories import BUCKET, chunk_transcript, manifest
from transcript_contracts.formats import MEDIA_TYPES
from transcript_contracts.keys import KeyLayout
from transcript_contracts.models import Manifest
from transcript_store import StitchOutcome, TranscriptStore

REGION: Final = "eu-north-1"
SENDER_NOW: Final = 1_795_000_000.0
SECRET_PARAMETER: Final = "/transcription/webhook-secret"
# One botocore session for every test: it caches the parsed service models.
SESSION = boto3.session.Session(botocore_session=botocore.session.get_session())


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    clear_settings_env(monkeypatch)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)


@dataclass
class Aws:
    s3: S3Client
    sqs: SQSClient
    events: EventBridgeClient
    ssm: SSMClient
    observer: EventObserver
    store: TranscriptStore
    layout: KeyLayout

    def put_manifest(self, doc: Manifest) -> None:
        key = self.layout.manifest(doc.session_id)
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=doc.model_dump_json().encode())

    def stitched_session(
        self, session_id: str, chunk_count: int = 2, callback_url: str | None = None
    ) -> StitchOutcome:
        """A complete session stitched for real: the outcome of the winning write."""
        doc = manifest(session_id, chunk_count).model_copy(update={"callback_url": callback_url})
        self.put_manifest(doc)
        for i in range(chunk_count):
            self.store.write_chunk_transcript(BUCKET, chunk_transcript(session_id, i), self.layout)
        outcome = self.store.stitch_session_if_complete(BUCKET, session_id, self.layout)
        assert outcome.status == "stitched"
        return outcome

    def keys(self, prefix: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def put_bytes(self, key: str, body: bytes, fmt: str = "json") -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=MEDIA_TYPES[fmt])


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        s3 = SESSION.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sqs = SESSION.client("sqs", region_name=REGION)
        events = SESSION.client("events", region_name=REGION)
        ssm = SESSION.client("ssm", region_name=REGION)
        ssm.put_parameter(Name=SECRET_PARAMETER, Value=SECRET, Type="SecureString")
        yield Aws(
            s3,
            sqs,
            events,
            ssm,
            EventObserver.create(events, sqs),
            TranscriptStore(s3),
            KeyLayout(),
        )


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def receiver(httpserver: HTTPServer) -> Receiver:
    rx = Receiver(clock=SENDER_NOW)
    httpserver.expect_request("/hooks/transcripts", method="POST").respond_with_handler(rx.handle)
    return rx


@pytest.fixture
def hook_url(httpserver: HTTPServer, receiver: Receiver) -> str:
    return httpserver.url_for("/hooks/transcripts")


NotifierFactory = Callable[..., Notifier]


@pytest.fixture
def make_notifier(aws: Aws, sleeps: list[float]) -> Iterator[NotifierFactory]:
    clients: list[httpx.Client] = []

    def make(
        *,
        webhook_url: str | None = None,
        secret: str | None = SECRET,
        parameter: str | None = None,
        bus: str = "default",
        check: UrlChecker = loopback_policy,
        max_attempts: int = 3,
        backoff_s: float = 0.01,
        **kwargs: Any,
    ) -> Notifier:
        from pydantic import SecretStr

        client = httpx.Client(follow_redirects=False, trust_env=False)
        clients.append(client)
        source = WebhookSecretSource(
            secret=SecretStr(secret) if secret else None,
            parameter=parameter,
            ssm=lambda: aws.ssm,
        )
        return Notifier(
            bucket=BUCKET,
            layout=aws.layout,
            s3=aws.s3,
            publisher=EventPublisher(lambda: aws.events, bus),
            webhooks=WebhookSender(
                timeout_s=2.0,
                max_attempts=max_attempts,
                backoff_s=backoff_s,
                client=client,
                check=check,
                sleep=sleeps.append,
                clock=lambda: SENDER_NOW,
            ),
            secret=source if source.configured else None,
            webhook_url=webhook_url,
            clock=lambda: datetime(2026, 11, 21, 13, 0, tzinfo=UTC),
            **kwargs,
        )

    yield make
    for client in clients:
        client.close()
