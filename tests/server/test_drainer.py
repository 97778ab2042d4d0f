"""The server's queue drainer (issue 15) with a fake engine on moto: it drains under the
worker's rules, yields to direct requests, never makes /health busy, and shares the queue with
a batch worker without a chunk transcribed twice."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import boto3
import numpy as np
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from batch_worker.queue import WorkQueue
from batch_worker.settings import WorkerSettings
from batch_worker.worker import Worker, WorkerDeps
from server.app import create_app
from server.drainer import Drainer, drainer_job
from server.inference import InferenceWorker
from server.runtime import Runtime
from tests.batch_worker.support import RecordingEvents
from tests.server.chunk_support import CORRUPT_AUDIO, FakeEngine, wav_bytes
from tests.server.conftest import BUCKET, make_settings
from tests.support.queues import create_work_queues
from tests.transcript_store.moto_atomic import atomic_conditional_writes
from transcript_contracts.keys import KeyLayout
from transcript_contracts.models import Manifest, QueueMessage, utc_now
from transcript_store import TranscriptStore

REGION: Final = "eu-north-1"
LAYOUT = KeyLayout()
MAX_RECEIVE_COUNT = 3


@dataclass
class Aws:
    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str

    def put_chunk(self, session_id: str, index: int, audio: bytes, ext: str = "wav") -> str:
        key = LAYOUT.audio_chunk(session_id, index, ext)
        etag = self.s3.put_object(Bucket=BUCKET, Key=key, Body=audio)["ETag"]
        message = QueueMessage(
            bucket=BUCKET,
            key=key,
            etag=etag,
            session_id=session_id,
            chunk_index=index,
            enqueued_at=utc_now(),
            reason="server_unhealthy",
        )
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=message.to_body())
        return key

    def put_manifest(self, session_id: str, chunk_count: int) -> None:
        manifest = Manifest(session_id=session_id, chunk_count=chunk_count)
        self.s3.put_object(
            Bucket=BUCKET, Key=LAYOUT.manifest(session_id), Body=manifest.model_dump_json()
        )

    def counts(self, url: str | None = None) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def transcript(self, session_id: str, index: int) -> dict[str, Any]:
        key = LAYOUT.chunk_transcript(session_id, index)
        data: dict[str, Any] = json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        return data

    def versions(self, prefix: str) -> list[str]:
        listed = self.s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
        return [v["Key"] for v in listed.get("Versions", [])]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(), atomic_conditional_writes(monkeypatch):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        # Versioning on: a transcript written twice would show as two versions.
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url, dlq_url = create_work_queues(sqs, max_receive_count=MAX_RECEIVE_COUNT)
        yield Aws(s3, sqs, queue_url, dlq_url)


def drain_settings(aws: Aws, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "queue_url": aws.queue_url,
        "drain_wait_time_s": 0,
        "drain_batch_size": 10,
        "visibility_timeout_s": 30,
        "heartbeat_interval_s": 10.0,
        "retry_delay_s": 0,
        "notifications_enabled": False,
    }
    values.update(overrides)
    return make_settings(**values)


def recording_drainer(events: RecordingEvents, aws: Aws) -> Callable[[Runtime], Drainer | None]:
    """The drainer as build_drainer makes it, telling ``events`` instead of EventBridge."""

    def build(runtime: Runtime) -> Drainer | None:
        assert runtime.worker is not None
        queue = WorkQueue(aws.sqs, aws.queue_url)
        return Drainer(runtime.settings, queue, drainer_job(runtime), runtime.worker, events=events)

    return build


def start_server(
    aws: Aws, engine: FakeEngine, events: RecordingEvents, **overrides: Any
) -> tuple[TestClient, Runtime]:
    runtime = Runtime(
        drain_settings(aws, **overrides),
        engine_loader=lambda _settings: engine,
        s3_factory=lambda _settings: aws.s3,
        drainer_factory=recording_drainer(events, aws),
    )
    return TestClient(create_app(runtime)), runtime


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_queued_chunks_are_drained_once_the_server_is_up(aws: Aws) -> None:
    for index in range(3):
        aws.put_chunk("s1", index, wav_bytes(1.0))
    aws.put_manifest("s1", 3)
    poison = aws.put_chunk("bad", 0, CORRUPT_AUDIO, ext="mp3")
    engine, events = FakeEngine(), RecordingEvents()
    client, runtime = start_server(aws, engine, events)
    with client:
        assert runtime.wait_loaded(30), runtime.load_error
        wait_for(lambda: aws.counts() == (0, 0) and aws.counts(aws.dlq_url)[0] == 1)
        drainer = runtime.drainer
        assert drainer is not None and drainer.running
    assert runtime.drainer is None  # stopped with the server

    for index in range(3):
        stored = aws.transcript("s1", index)
        assert stored["transcribed_by"] == "server-drainer"
        assert stored["text"] == "tone of 1.0 seconds"
    assert engine.batches == [[1.0, 1.0, 1.0]]  # one inference batch for the three
    assert [o.session_id for o in events.stitched] == ["s1"]
    assert len(aws.versions("transcripts/s1/session.json")) == 1
    # Poison: left for redrive on every receive, Chunk Failed each time (the notifier keeps
    # one per version), then the DLQ.
    assert [key for _, key, _ in events.failed] == [poison] * MAX_RECEIVE_COUNT
    assert all("undecodable" in reason for _, _, reason in events.failed)
    dead = aws.sqs.receive_message(QueueUrl=aws.dlq_url)["Messages"]
    assert [json.loads(m["Body"])["key"] for m in dead] == [poison]


def test_no_queue_url_no_drainer(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    runtime = Runtime(
        make_settings(), engine_loader=lambda _s: FakeEngine(), s3_factory=lambda _s: aws.s3
    )
    with TestClient(create_app(runtime)):
        assert runtime.wait_loaded(30)
        assert runtime.drainer is None
    assert aws.counts() == (1, 0)


def test_health_never_says_busy_for_queued_work(aws: Aws) -> None:
    release = threading.Event()
    engine = FakeEngine(hook=lambda _lengths: release.wait(20))
    for index in range(4):
        aws.put_chunk("s1", index, wav_bytes(1.0))
    # One pending transcription fills MAX_PENDING; queued work must not count towards it.
    client, runtime = start_server(aws, engine, RecordingEvents(), max_pending=1)
    with client:
        assert runtime.wait_loaded(30)
        wait_for(lambda: len(engine.batches) == 1)  # the drainer's batch is in inference
        health = client.get("/health")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "healthy"
        release.set()
        wait_for(lambda: aws.counts() == (0, 0))


def test_direct_work_goes_first_and_waits_behind_one_queued_batch_at_most() -> None:
    """Queued work for three batches is waiting; a direct request arriving while the first
    runs is the very next batch."""
    first_running, release = threading.Event(), threading.Event()

    def hook(lengths: list[float]) -> None:
        first_running.set()
        release.wait(10)

    engine = FakeEngine(hook=hook)
    worker = InferenceWorker(
        engine, max_batch=2, max_wait_s=0.0, max_pending=4, max_decoded_bytes=64 * 2**20
    )
    worker.start()
    queued = [np.zeros(16_000, dtype=np.float32) for _ in range(6)]
    results: list[Any] = []
    drainer = threading.Thread(
        target=lambda: results.extend(worker.transcribe_queued(queued, ["en"] * 6))
    )
    drainer.start()
    assert first_running.wait(5)
    # Queued work in inference is neither direct work nor a reason to say busy.
    assert worker.direct_idle and worker.busy_reason is None

    async def direct() -> Any:
        ticket = worker.admit(16_000 * 4 * 3)
        assert not worker.direct_idle  # the drainer would not receive now
        future = worker.submit(np.zeros(48_000, dtype=np.float32), "en", ticket)
        release.set()
        return await future

    answer = asyncio.run(direct())
    drainer.join(10)
    worker.stop()
    assert answer.duration_s == 3.0
    assert engine.batches == [[1.0, 1.0], [3.0], [1.0, 1.0], [1.0, 1.0]]
    assert len(results) == 6 and worker.direct_idle


def test_the_drainer_receives_only_when_no_direct_request_waits(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))

    class Busy:
        alive = True
        direct_idle = False

        def transcribe_queued(self, audios: Any, languages: Any) -> Any:
            raise AssertionError("never reached while busy")

    busy = Busy()
    runtime = Runtime(drain_settings(aws), s3_factory=lambda _s: aws.s3)
    drainer = Drainer(
        runtime.settings,
        WorkQueue(aws.sqs, aws.queue_url),
        drainer_job(runtime),
        busy,  # type: ignore[arg-type]
    )
    drainer.start()
    try:
        time.sleep(0.5)
        assert aws.counts() == (1, 0)  # never received while direct work waits
    finally:
        drainer.stop(grace_s=0.1)


def test_stopping_mid_batch_hands_the_messages_back(aws: Aws) -> None:
    release = threading.Event()
    engine = FakeEngine(hook=lambda _lengths: release.wait(20))
    for index in range(2):
        aws.put_chunk("s1", index, wav_bytes(1.0))
    client, runtime = start_server(aws, engine, RecordingEvents())
    with client:
        assert runtime.wait_loaded(30)
        wait_for(lambda: len(engine.batches) == 1)
        assert aws.counts() == (0, 2)
        # The server shuts down (lifespan exit) while the queued batch is in inference.
        stopper = threading.Thread(target=runtime.stop)
        stopper.start()
        wait_for(lambda: aws.counts() == (2, 0), timeout_s=15)
        release.set()
        stopper.join(20)


def test_worker_and_drainer_together_transcribe_each_chunk_once(aws: Aws) -> None:
    count = 12
    for index in range(count):
        aws.put_chunk("s1", index, wav_bytes(0.5))
    aws.put_manifest("s1", count)
    server_engine, worker_engine = FakeEngine(), FakeEngine()
    events = RecordingEvents()
    client, runtime = start_server(aws, server_engine, events, drain_batch_size=2)
    worker_settings = WorkerSettings(
        _env_file=None,
        bucket_name=BUCKET,
        queue_url=aws.queue_url,
        language="en",
        device="cpu",
        worker_batch_size=2,
        wait_time_s=0,
        visibility_timeout_s=30,
        heartbeat_interval_s=10.0,
        retry_delay_s=0,
        idle_exit_s=1.0,
    )
    batch_worker = Worker(
        WorkerDeps(
            settings=worker_settings,
            queue=WorkQueue(aws.sqs, aws.queue_url),
            s3=aws.s3,
            engine=worker_engine,
            store=TranscriptStore(aws.s3),
            events=events,
        )
    )
    with client:
        assert runtime.wait_loaded(30)
        assert batch_worker.run() == 0
        wait_for(lambda: aws.counts() == (0, 0))

    assert server_engine.chunks + worker_engine.chunks == count
    by = {aws.transcript("s1", i)["transcribed_by"] for i in range(count)}
    assert by <= {"server-drainer", "worker"}
    versions = aws.versions("transcripts/s1/chunk-")
    assert len(versions) == len(set(versions)) == count
    assert [o.session_id for o in events.stitched] == ["s1"]
