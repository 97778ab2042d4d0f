"""The local pipeline: embedded AWS, server, router and worker wired as in AWS, on loopback.

Used by ``smart-router local``, ``smart-router chaos`` and the end-to-end tests. Every process or
thread it starts is stopped by ``close()`` (also on Ctrl-C: the context manager's exit).
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from smart_router.errors import PipelineTimeoutError
from smart_router.local.aws import (
    REGION,
    Clients,
    Names,
    Resources,
    aws_environment,
    embedded_aws,
    patched_environ,
    provision,
)
from smart_router.local.environments import server_env, worker_env
from smart_router.local.lambda_runtime import Invocation, LocalLambda
from smart_router.local.processes import ServerProcess, WorkerProcess
from smart_router.local.sessions import LocalSession
from transcript_contracts.keys import TRANSCRIPT_FORMATS, KeyLayout, TranscriptFormat
from transcript_store.queue_depth import read_queue_depth

if TYPE_CHECKING:
    from smart_router.session_status import SessionStatus

logger = logging.getLogger(__name__)

ManifestOrder = Literal["first", "last", "none"]


@dataclass
class PipelineConfig:
    work_dir: Path
    model_dir: Path
    names: Names = field(default_factory=Names)
    start_server: bool = True
    language: str = "sv"
    router_concurrency: int = 4
    # As template.yaml's RouterFunction: the router sizes its retries from the time left.
    lambda_timeout_s: float = 600.0
    duplicate_probability: float = 0.0
    # Seeds the duplicate-delivery draws (chaos runs are reproducible up to thread timing).
    seed: int | None = None
    # The router talks to this instead of the server (the chaos run's fault proxy).
    server_url_override: str | None = None
    server_port: int = 0
    # Extra settings (field name → value) for the router and environment for the worker.
    router_overrides: dict[str, Any] = field(default_factory=dict)
    worker_overrides: dict[str, str] = field(default_factory=dict)
    # S3 versioning on: a transcript written twice would show as two versions (chaos run).
    bucket_versioning: bool = False
    worker_idle_exit_s: float = 3.0
    worker_retry_delay_s: int = 1
    server_ready_timeout_s: float = 300.0
    # The server drains the work queue with spare capacity (QUEUE_URL set for it).
    server_drains: bool = False
    # Visibility of received work messages and its heartbeat (worker and server drainer alike).
    visibility_timeout_s: int = 60
    heartbeat_interval_s: float = 10.0


@dataclass(frozen=True)
class SessionResult:
    session_id: str
    stitched: bool
    files: dict[str, Path]
    text: str | None


class LocalPipeline:
    def __init__(
        self,
        config: PipelineConfig,
        *,
        on_invocation: Callable[[Invocation], None] = lambda _: None,
    ) -> None:
        self.config = config
        self.api_key = secrets.token_urlsafe(24)
        self.layout = KeyLayout(config.names.audio_prefix, config.names.transcript_prefix)
        self.invocations: list[Invocation] = []
        self._on_invocation = on_invocation
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self.endpoint_url = ""
        self.clients: Clients
        self.resources: Resources
        self.server: ServerProcess | None = None
        self.lambda_: LocalLambda | None = None
        self._workers = 0

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> LocalPipeline:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        cfg = self.config
        cfg.work_dir.mkdir(parents=True, exist_ok=True)
        self.endpoint_url = self._stack.enter_context(embedded_aws())
        # The router runs in this process and reads AWS_ENDPOINT_URL like any boto3 code.
        self._stack.enter_context(patched_environ(aws_environment(self.endpoint_url)))
        self.clients = Clients.create(self.endpoint_url)
        self.resources = provision(self.clients, cfg.names, api_key=self.api_key)
        if cfg.bucket_versioning:
            self.clients.s3.put_bucket_versioning(
                Bucket=cfg.names.bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        self.server = ServerProcess(
            server_env(cfg, self.endpoint_url, self.resources),
            cfg.work_dir / "logs" / "server.log",
            port=cfg.server_port,
        )
        self._stack.callback(self.server.stop)
        if cfg.start_server:
            self.start_server()
        self._start_router()

    def close(self) -> None:
        self._stack.close()

    def _start_router(self) -> None:
        from router.app import build_app
        from router.handler import lambda_handler, set_app
        from router.settings import RouterSettings
        from transcript_contracts.settings import load_settings

        cfg = self.config
        if self.server is None:
            raise RuntimeError("start() creates the server process first")
        settings = load_settings(
            RouterSettings,
            bucket_name=cfg.names.bucket,
            audio_prefix=cfg.names.audio_prefix,
            transcript_prefix=cfg.names.transcript_prefix,
            queue_url=self.resources.queue_url,
            server_url=cfg.server_url_override or self.server.url,
            api_key_parameter=cfg.names.api_key_parameter,
            idempotency_table=cfg.names.idempotency_table,
            **cfg.router_overrides,
        )
        set_app(build_app(settings))
        self._stack.callback(set_app, None)
        self.lambda_ = LocalLambda(
            sqs=self.clients.sqs,
            event_queue_url=self.resources.event_queue_url,
            failure_queue_url=self.resources.router_failure_queue_url,
            handler=lambda_handler,
            region=REGION,
            timeout_s=cfg.lambda_timeout_s,
            concurrency=cfg.router_concurrency,
            duplicate_probability=cfg.duplicate_probability,
            on_invocation=self._record,
            rng=random.Random(cfg.seed),  # noqa: S311 - fault injection, not security
        )
        self.lambda_.start()
        self._stack.callback(self.lambda_.stop)

    def _record(self, invocation: Invocation) -> None:
        with self._lock:
            self.invocations.append(invocation)
        self._on_invocation(invocation)

    # -- the server -----------------------------------------------------------------------

    def start_server(self) -> None:
        if self.server is None:
            raise RuntimeError("the pipeline is not started")
        self.server.start()
        self.server.wait_healthy(self.config.server_ready_timeout_s)

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.stop()

    def kill_server(self) -> None:
        """SIGKILL: the server dies mid-batch, nothing released, nothing cleaned up."""
        if self.server is not None:
            self.server.kill()

    # -- uploads --------------------------------------------------------------------------

    def upload_manifest(self, session: LocalSession) -> str:
        key = self.layout.manifest(session.session_id)
        self.clients.s3.put_object(
            Bucket=self.config.names.bucket,
            Key=key,
            Body=session.manifest().model_dump_json(exclude_none=True).encode(),
            ContentType="application/json",
        )
        return key

    def upload_chunk(self, session: LocalSession, index: int, body: bytes | None = None) -> str:
        chunk = session.chunks[index]
        key = session.chunk_key(self.layout, chunk)
        self.clients.s3.put_object(
            Bucket=self.config.names.bucket,
            Key=key,
            Body=body if body is not None else chunk.path.read_bytes(),
        )
        return key

    def upload_session(self, session: LocalSession, manifest: ManifestOrder = "first") -> None:
        if manifest == "first":
            self.upload_manifest(session)
        for chunk in session.chunks:
            self.upload_chunk(session, chunk.index)
        if manifest == "last":
            self.upload_manifest(session)

    def redeliver(self, event: dict[str, Any]) -> None:
        """EventBridge's at-least-once delivery: the same object event again, new event id."""
        self.clients.sqs.send_message(
            QueueUrl=self.resources.event_queue_url,
            MessageBody=json.dumps({**event, "id": secrets.token_hex(16)}),
            MessageAttributes={
                "duplicate_of": {"DataType": "String", "StringValue": str(event.get("id"))}
            },
        )

    # -- waiting --------------------------------------------------------------------------

    def _queue_depth(self, url: str) -> int:
        return read_queue_depth(self.clients.sqs, url).total

    def wait_router_idle(self, timeout_s: float = 300.0) -> None:
        """Until every event delivered so far has been handled (retries included)."""
        deadline = time.monotonic() + timeout_s
        quiet = 0
        while time.monotonic() < deadline:
            busy = self.lambda_ is not None and self.lambda_.busy
            if not busy and self._queue_depth(self.resources.event_queue_url) == 0:
                quiet += 1
                if quiet >= 3:  # S3 → rule → queue delivery is asynchronous in moto too
                    return
            else:
                quiet = 0
            time.sleep(0.3)
        raise PipelineTimeoutError(f"the router was still busy after {timeout_s:.0f} s")

    def work_queue_depth(self) -> int:
        return self._queue_depth(self.resources.queue_url)

    def wait_queue_drained(self, timeout_s: float = 600.0) -> None:
        """Until the work queue holds nothing: none waiting, in work or delayed."""
        deadline = time.monotonic() + timeout_s
        while self.work_queue_depth() > 0:
            if time.monotonic() > deadline:
                raise PipelineTimeoutError(
                    f"the work queue still held messages after {timeout_s:.0f} s"
                )
            time.sleep(0.5)

    @property
    def workers_started(self) -> int:
        """Batch worker processes this pipeline started."""
        return self._workers

    def run_worker(self, timeout_s: float = 600.0, *, name: str = "worker") -> int:
        """Start the batch worker and wait for its idle exit; returns its exit code."""
        worker = self.start_worker(name=name)
        code = worker.wait(timeout_s)
        if code is None:
            worker.stop()
            raise PipelineTimeoutError(f"the worker did not finish within {timeout_s:.0f} s")
        return code

    def start_worker(
        self, *, name: str = "worker", env: dict[str, str] | None = None
    ) -> WorkerProcess:
        self._workers += 1
        worker = WorkerProcess(
            {**worker_env(self.config, self.endpoint_url, self.resources), **(env or {})},
            self.config.work_dir / "logs" / f"{name}-{self._workers}.log",
            name=name,
        )
        self._stack.callback(worker.stop)
        worker.start()
        return worker

    # -- results --------------------------------------------------------------------------

    def peek_queue(self, url: str) -> Iterator[dict[str, Any]]:
        """Every message body in ``url``, left in place (visibility released at once)."""
        seen: set[str] = set()
        for _ in range(50):
            received = self.clients.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5, WaitTimeSeconds=0
            ).get("Messages", [])
            fresh = [m for m in received if m["MessageId"] not in seen]
            for message in received:
                self.clients.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            if not fresh:
                return
            for message in fresh:
                seen.add(message["MessageId"])
                yield json.loads(message["Body"])

    def chunk_transcript_exists(self, session: LocalSession, index: int) -> bool:
        from transcript_store import TranscriptStore

        return TranscriptStore(self.clients.s3).transcript_exists(
            self.config.names.bucket, self.layout.chunk_transcript(session.session_id, index)
        )

    def session_status(self, session_id: str) -> SessionStatus:
        """What `smart-router status` says of the session, from S3 and the queues alone."""
        from smart_router.session_status import collect_status

        return collect_status(
            session_id,
            bucket=self.config.names.bucket,
            layout=self.layout,
            s3=self.clients.s3,
            sqs=self.clients.sqs,
            queue_url=self.resources.queue_url,
            dlq_url=self.resources.dead_letter_queue_url,
            dlq_wait_s=0,
        )

    def fetch_session(self, session_id: str, out_dir: Path) -> SessionResult:
        """Download session.{json,txt,srt,vtt} into ``out_dir/session_id`` when stitched."""
        from transcript_store import TranscriptStore

        store = TranscriptStore(self.clients.s3)
        bucket = self.config.names.bucket
        files: dict[str, Path] = {}
        text: str | None = None
        for fmt in TRANSCRIPT_FORMATS:
            key = self.layout.session_transcript(session_id, cast(TranscriptFormat, fmt))
            data = store.get_bytes(bucket, key, max_bytes=64 * 1024 * 1024)
            if data is None:
                continue
            target = out_dir / session_id / f"session.{fmt}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            files[fmt] = target
            if fmt == "txt":
                text = data.decode("utf-8")
        return SessionResult(session_id, "json" in files, files, text)
