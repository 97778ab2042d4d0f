"""Router test rig: moto for S3/SQS/DynamoDB/SSM/EC2, respx for the transcription server, a fake
Lambda context on a fake clock (no real sleeps), and the handler's app built inside the mock."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import boto3
import botocore.session
import httpx
import pytest
import respx
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws
from mypy_boto3_dynamodb import DynamoDBClient
from mypy_boto3_s3 import S3Client
from mypy_boto3_sqs import SQSClient
from mypy_boto3_ssm import SSMClient

from router import handler
from router.app import RouterApp, build_app, use_fast_timestamps
from router.settings import RouterSettings
from tests.support.settings import clear_settings_env
from tests.transcript_store.factories import BUCKET, chunk_transcript
from tests.transcript_store.moto_atomic import atomic_conditional_writes
from transcript_contracts.keys import KeyLayout, parse_s3_uri
from transcript_contracts.settings import load_settings
from transcript_store import TranscriptStore

REGION: Final = "eu-north-1"
SERVER = "http://transcriber.test:8000"
API_KEY = "sk-test-7c1e9a0b55d2-never-log-me"
API_KEY_PARAMETER = "/transcription/api-key"
TABLE = "router-idempotency-test"
QUEUE = "transcription-work-test"
# One session for every app the tests build: it caches the parsed service models.
CORE = botocore.session.get_session()
use_fast_timestamps(CORE)  # as build_app does with the session it makes
SESSION = boto3.session.Session(botocore_session=CORE)
HEALTHY = {
    "status": "healthy",
    "model_loaded": True,
    "gpu_available": False,
    "device": "cpu",
    "model": "whisper-test",
    "memory_usage": {},
    "queue_depth": 0,
}


@pytest.fixture(autouse=True)
def router_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Fake AWS credentials, no settings from the caller's shell, no .env, no tracing."""
    clear_settings_env(monkeypatch)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "RouterTests",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@dataclass
class Clock:
    """Fake time: sleeping advances it, so a context's remaining time shrinks with backoff."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeContext(LambdaContext):
    def __init__(self, clock: Clock, budget_ms: int = 600_000) -> None:
        self._clock = clock
        self._deadline_ms = clock.now * 1000 + budget_ms
        self._function_name = "transcription-router"
        self._function_version = "$LATEST"
        self._invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:123456789012:function:transcription-router"
        )
        self._memory_limit_in_mb = 256
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = "/aws/lambda/transcription-router"
        self._log_stream_name = "2026/11/21/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return max(0, int(self._deadline_ms - self._clock.now * 1000))


@dataclass
class Aws:
    s3: S3Client
    sqs: SQSClient
    dynamodb: DynamoDBClient
    ssm: SSMClient
    queue_url: str
    store: TranscriptStore
    layout: KeyLayout

    def messages(self) -> list[dict[str, Any]]:
        """Every message on the work queue (received once, so call it at the end)."""
        found: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                return found
            found.extend(json.loads(m["Body"]) for m in got)

    def put_audio(self, key: str, body: bytes = b"ID3 fake audio") -> str:
        return self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')

    def put_manifest(self, session_id: str, chunk_count: int, language: str | None = "sv") -> str:
        doc: dict[str, Any] = {"session_id": session_id, "chunk_count": chunk_count}
        if language:
            doc["language"] = language
        key = f"audio/{session_id}/manifest.json"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc).encode())
        return key

    def exists(self, key: str) -> bool:
        return self.store.transcript_exists(BUCKET, key)

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with mock_aws(), atomic_conditional_writes(monkeypatch):
        s3 = SESSION.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sqs = SESSION.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        dynamodb = SESSION.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
        )
        ssm = SESSION.client("ssm", region_name=REGION)
        ssm.put_parameter(Name=API_KEY_PARAMETER, Value=API_KEY, Type="SecureString")
        layout = KeyLayout()
        yield Aws(s3, sqs, dynamodb, ssm, queue_url, TranscriptStore(s3), layout)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def router_settings(aws: Aws, **overrides: Any) -> RouterSettings:
    values: dict[str, Any] = {
        "bucket_name": BUCKET,
        "queue_url": aws.queue_url,
        "server_url": SERVER,
        "api_key_parameter": API_KEY_PARAMETER,
        "idempotency_table": TABLE,
        "health_timeout_s": 1.0,
        "connect_timeout_s": 1.0,
        "read_timeout_s": 10.0,
        "queue_send_reserve_s": 5.0,
    }
    values.update(overrides)
    return load_settings(RouterSettings, **values)


AppFactory = Callable[..., RouterApp]


@pytest.fixture
def make_app(aws: Aws, clock: Clock) -> Iterator[AppFactory]:
    """Build the handler's app with settings overrides; the default one is installed."""

    def make(**overrides: Any) -> RouterApp:
        app = build_app(router_settings(aws, **overrides), session=SESSION, sleep=clock.sleep)
        handler.set_app(app)
        return app

    yield make
    handler.set_app(None)


@pytest.fixture
def app(make_app: AppFactory) -> RouterApp:
    return make_app()


class FakeServer:
    """The transcription server's /health and /transcribe-s3, as respx routes.

    ``plan``: answers for the next /transcribe-s3 calls (status codes or exceptions to raise),
    then 200. A 200 writes the chunk transcript create-only to the output path, as the real
    server does (P7); ``after_write`` runs next (barriers for race tests).
    """

    def __init__(self, mock: respx.MockRouter, aws: Aws) -> None:
        self._aws = aws
        self._lock = threading.Lock()
        self.health_status = 200
        self.health_body: dict[str, Any] = dict(HEALTHY)
        self.plan: list[int | Exception] = []
        self.before_write: Callable[[dict[str, Any]], object] | None = None
        self.after_write: Callable[[dict[str, Any]], object] | None = None
        self.health = mock.get(f"{SERVER}/health").mock(side_effect=self._health)
        self.transcribe = mock.post(f"{SERVER}/transcribe-s3").mock(side_effect=self._transcribe)

    def _health(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.health_status, json=self.health_body)

    def _transcribe(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            step: int | Exception = self.plan.pop(0) if self.plan else 200
        if isinstance(step, Exception):
            raise step
        if step != 200:
            error = {"error": {"code": f"http_{step}", "message": "planned failure"}}
            return httpx.Response(step, json=error)
        body = json.loads(request.content)
        source = parse_s3_uri(body["s3_input_path"])
        output = parse_s3_uri(body["s3_output_path"])
        chunk = self._aws.layout.parse_audio_chunk(source.key)
        etag = self._aws.store.object_etag(source.bucket, source.key) or "missing"
        transcript = chunk_transcript(chunk.session_id, chunk.index, etag=etag)
        if self.before_write is not None:
            self.before_write(body)
        assert output.key == self._aws.layout.transcript_for(chunk)
        self._aws.store.write_chunk_transcript(output.bucket, transcript, self._aws.layout)
        if self.after_write is not None:
            self.after_write(body)
        return httpx.Response(
            200,
            json={
                "transcription": transcript.text,
                "segments": [s.model_dump() for s in transcript.segments],
                "duration": transcript.duration_s,
                "language": transcript.language,
                "model": transcript.model,
                "processing_time": transcript.processing_s,
                "gpu_memory_used": None,
            },
        )


@pytest.fixture
def server(aws: Aws) -> Iterator[FakeServer]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield FakeServer(mock, aws)


@pytest.fixture
def router_logs() -> Iterator[io.StringIO]:
    """What the router logs (Powertools JSON lines), whatever pytest does with stdout."""
    stream = io.StringIO()
    log_handler = handler.logger.registered_handler
    if not isinstance(log_handler, logging.StreamHandler):
        raise TypeError(f"unexpected log handler {log_handler!r}")
    old = log_handler.setStream(stream)
    try:
        yield stream
    finally:
        log_handler.setStream(old)


def invoke(event: Any, clock: Clock, budget_ms: int = 600_000) -> dict[str, Any]:
    result: dict[str, Any] = handler.lambda_handler(event, FakeContext(clock, budget_ms))
    return result


def invoke_concurrently(events: list[dict[str, Any]], clock: Clock) -> list[dict[str, Any]]:
    """One thread per event, all at once (races); any invocation error fails the caller."""
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def deliver(event: dict[str, Any]) -> None:
        try:
            results.append(invoke(event, clock))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    return results
