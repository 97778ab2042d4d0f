"""Builders for worker tests: an emulated bucket + queue + DLQ, chunks, fake engine and clock."""

from __future__ import annotations

import io
import json
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import numpy as np
from mypy_boto3_s3 import S3Client
from mypy_boto3_sqs import SQSClient

from batch_worker.queue import WorkQueue
from batch_worker.settings import WorkerSettings
from batch_worker.worker import Worker, WorkerDeps
from transcript_contracts.keys import KeyLayout
from transcript_contracts.models import Manifest, QueueMessage
from transcript_store import StitchOutcome, TranscriptStore
from whisper_engine.results import Segment, TranscriptionResult

BUCKET = "worker-test-bucket"
REGION: Final = "eu-north-1"
MAX_RECEIVE_COUNT = 3
LAYOUT = KeyLayout()
QUEUED_AT = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)


@dataclass
class Aws:
    s3: S3Client
    sqs: SQSClient
    queue_url: str
    dlq_url: str

    # -- arranging -------------------------------------------------------------------------

    def put_chunk(self, session_id: str, index: int, audio: bytes, ext: str = "wav") -> str:
        key = LAYOUT.audio_chunk(session_id, index, ext)
        etag = self.s3.put_object(Bucket=BUCKET, Key=key, Body=audio)["ETag"]
        message = QueueMessage(
            bucket=BUCKET,
            key=key,
            etag=etag,
            session_id=session_id,
            chunk_index=index,
            enqueued_at=QUEUED_AT,
            reason="server_unhealthy",
        )
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=message.to_body())
        return key

    def put_manifest(self, session_id: str, chunk_count: int, language: str | None = None) -> None:
        manifest = Manifest(session_id=session_id, chunk_count=chunk_count, language=language)
        self.s3.put_object(
            Bucket=BUCKET, Key=LAYOUT.manifest(session_id), Body=manifest.model_dump_json()
        )

    def send_raw(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    # -- observing -------------------------------------------------------------------------

    def counts(self, url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of the work queue (or ``url``)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def keys(self, prefix: str) -> list[str]:
        response = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def json(self, key: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        return data

    def dlq_bodies(self) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in response.get("Messages", [])]


def settings(aws: Aws, **overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "bucket_name": BUCKET,
        "queue_url": aws.queue_url,
        "language": "en",
        "model_id": None,
        "device": "cpu",
        "wait_time_s": 0,
        "visibility_timeout_s": 30,
        "heartbeat_interval_s": 10.0,
        "retry_delay_s": 0,
        "idle_exit_s": 0.0,
        "max_runtime_s": 600.0,
        "stop_grace_s": 60.0,
        "shutdown_on_exit": False,
        "imds_enabled": False,
        "log_level": "INFO",
    }
    values.update(overrides)
    # No .env and explicit values: the developer's shell (LANGUAGE=en_US:en...) must not leak in.
    return WorkerSettings(_env_file=None, **values)


def wav_bytes(seconds: float = 1.0, frequency: float = 440.0) -> bytes:
    """A short 16 kHz mono tone as WAV (content is irrelevant to the fake engine)."""
    t = np.arange(int(seconds * 16_000)) / 16_000
    pcm = (0.2 * np.sin(2 * np.pi * frequency * t) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


CORRUPT_AUDIO = b"ID3" + bytes(range(256)) * 8  # an MP3 header followed by garbage


class FakeEngine:
    """Returns a result per audio; ``hook(call_number, audios)`` runs first (block, raise)."""

    def __init__(self, hook: Callable[[int, Sequence[Any]], None] | None = None) -> None:
        self.calls: list[int] = []
        self.languages: list[Any] = []
        self._hook = hook

    def transcribe_many(
        self, audios: Sequence[Any], *, language: Any = None
    ) -> list[TranscriptionResult]:
        self.calls.append(len(audios))
        self.languages.append(language)
        if self._hook is not None:
            self._hook(len(self.calls), audios)
        results = []
        for samples in audios:
            duration = samples.shape[0] / 16_000
            text = f"tone of {duration:.1f} seconds"
            results.append(
                TranscriptionResult(
                    text=text,
                    segments=[Segment(0.0, duration, text)],
                    language="en",
                    duration_s=duration,
                    model="fake-whisper",
                )
            )
        return results


class TickingClock:
    """A monotonic clock that advances ``step`` seconds on every read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@dataclass
class RecordingEvents:
    stitched: list[StitchOutcome] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)

    def session_stitched(
        self, outcome: StitchOutcome, *, bucket: str | None = None, manifest: Manifest | None = None
    ) -> None:
        self.stitched.append(outcome)

    def chunk_failed(self, bucket: str, key: str, reason: str) -> None:
        self.failed.append((bucket, key, reason))


def deps(aws: Aws, engine: Any, worker_settings: WorkerSettings, **extra: Any) -> WorkerDeps:
    return WorkerDeps(
        settings=worker_settings,
        queue=WorkQueue(aws.sqs, aws.queue_url),
        s3=aws.s3,
        engine=engine,
        store=TranscriptStore(aws.s3, sleep=lambda _s: None),
        **extra,
    )


def _refuse_hard_exit(code: int) -> None:
    # The real default is os._exit: a watchdog firing in a test must fail it, not end pytest.
    raise RuntimeError(f"the worker's watchdog forced exit {code} during a test")


def worker(aws: Aws, engine: Any, worker_settings: WorkerSettings, **extra: Any) -> Worker:
    names = ("imds", "hard_exit", "watchdog_slack_s", "progress")
    worker_kwargs = {k: extra.pop(k) for k in names if k in extra}
    worker_kwargs.setdefault("hard_exit", _refuse_hard_exit)
    return Worker(deps(aws, engine, worker_settings, **extra), **worker_kwargs)


class FakeImds:
    """IMDSv2 on 127.0.0.1: token via PUT, 401 without it, 404 until a notice is armed."""

    def __init__(self, *, answer_delay_s: float = 0.0) -> None:
        self.notice: dict[str, str] | None = None
        # A slow metadata service: each spot/instance-action read is answered this much later.
        self.answer_delay_s = answer_delay_s
        self.token_requests = 0
        self.action_requests = 0
        self.unauthorized = 0
        # When each spot/instance-action read arrived and when the notice was armed
        # (time.monotonic): P14 is measured from these, not read off the settings.
        self.action_times: list[float] = []
        self.armed_at: float | None = None
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _send(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                if self.path != "/latest/api/token" or not self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                ):
                    self._send(400)
                    return
                imds.token_requests += 1
                self._send(200, b"token-1")

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") != "token-1":
                    imds.unauthorized += 1
                    self._send(401)
                    return
                if self.path != "/latest/meta-data/spot/instance-action":
                    self._send(404)
                    return
                imds.action_requests += 1
                imds.action_times.append(time.monotonic())
                if imds.answer_delay_s:
                    time.sleep(imds.answer_delay_s)
                if imds.notice is None:
                    self._send(404)
                else:
                    self._send(200, json.dumps(imds.notice).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def arm(self, at: datetime) -> None:
        self.notice = {"action": "terminate", "time": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.armed_at = time.monotonic()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
