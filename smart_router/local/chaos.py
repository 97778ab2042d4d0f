"""``smart-router chaos``: the local pipeline under faults, with a count of what survived.

While chunks flow: the server is killed (SIGKILL) and restarted at random, a proxy between the
router and the server injects 5xx, lost responses, hangs and slow answers, a share of events is
delivered twice, a worker is killed while it holds messages, and a few chunks are corrupt.
Then every queued chunk is drained. Targets: nothing lost, nothing duplicated, every complete
session stitched exactly once, and the dead-letter queues hold exactly the corrupt chunks.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smart_router.local.fault_proxy import FaultPlan, FaultProxy
from smart_router.local.lambda_runtime import redirect_router_output
from smart_router.local.pipeline import LocalPipeline, PipelineConfig
from smart_router.local.processes import WorkerProcess, free_port
from smart_router.local.sessions import LocalChunk, LocalSession, sample_sessions
from transcript_store.queue_depth import read_queue_depth

logger = logging.getLogger(__name__)

CORRUPT_BODY = b"\x00not audio: the chaos run's corrupt chunk\x00" * 32


@dataclass(frozen=True)
class ChaosOptions:
    chunks: int = 500
    sessions: int = 25
    corrupt: int | None = None  # default: 1 % of the chunks, at least 1
    duplicate_rate: float = 0.2
    server_kill_every_s: tuple[float, float] = (15.0, 40.0)
    seed: int = 7
    # Uploads spread over time, so that server kills and restarts meet both paths.
    upload_rate_per_s: float = 2.0
    faults: FaultPlan = field(default_factory=FaultPlan)


@dataclass
class ChaosReport:
    uploaded: int = 0
    corrupt: int = 0
    transcribed: int = 0
    dead_letters: list[tuple[str, str]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    sessions: int = 0
    sessions_complete: int = 0
    sessions_stitched_once: int = 0
    sessions_stitched_twice: list[str] = field(default_factory=list)
    complete_not_stitched: list[str] = field(default_factory=list)
    dlq_is_exactly_corrupt: bool = False
    wall_s: float = 0.0
    injected: dict[str, int] = field(default_factory=dict)
    routes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and not self.duplicated
            and not self.sessions_stitched_twice
            and not self.complete_not_stitched
            and self.dlq_is_exactly_corrupt
        )

    def lines(self) -> list[str]:
        return [
            f"chunks uploaded      {self.uploaded} ({self.corrupt} corrupt)",
            f"chunks transcribed   {self.transcribed}",
            f"chunks in DLQ        {len(self.dead_letters)}",
            *(f"  {key}: {reason}" for key, reason in self.dead_letters),
            f"chunks lost          {len(self.lost)} {self.lost[:10] or ''}",
            f"chunks duplicated    {len(self.duplicated)} {self.duplicated[:10] or ''}",
            f"sessions             {self.sessions} ({self.sessions_complete} complete)",
            f"stitched exactly once {self.sessions_stitched_once}"
            f" (twice: {len(self.sessions_stitched_twice)},"
            f" complete but not stitched: {len(self.complete_not_stitched)})",
            f"DLQ = corrupt chunks {self.dlq_is_exactly_corrupt}",
            f"routes               {dict(sorted(self.routes.items()))}",
            f"faults injected      {dict(sorted(self.injected.items()))}",
            f"wall time            {self.wall_s:.1f} s",
            f"result               {'PASS' if self.ok else 'FAIL'}",
        ]


def build_sessions(options: ChaosOptions, rng: random.Random) -> list[LocalSession]:
    samples = sample_sessions()
    counts = [options.chunks // options.sessions] * options.sessions
    for i in range(options.chunks % options.sessions):
        counts[i] += 1
    sessions = []
    for number, count in enumerate(counts):
        sample = samples[number % len(samples)]
        chunks = tuple(
            LocalChunk(i, sample.chunks[i % len(sample.chunks)].path) for i in range(count)
        )
        sessions.append(LocalSession(f"chaos-{number:03d}", sample.language, chunks))
    return [s for s in sessions if s.chunks]


class Chaos:
    def __init__(self, pipeline: LocalPipeline, options: ChaosOptions, rng: random.Random) -> None:
        self.pipeline = pipeline
        self.options = options
        self.rng = rng
        self.injected: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._server_chaos, name="chaos", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _server_chaos(self) -> None:
        server = self.pipeline.server
        if server is None:
            return
        while not self._stop.wait(self.rng.uniform(*self.options.server_kill_every_s)):
            server.kill()
            self.injected["server_kills"] += 1
            logger.info("chaos: server killed")
            if self._stop.wait(self.rng.uniform(2.0, 6.0)):
                break
            try:
                self.pipeline.start_server()
            except Exception as exc:  # noqa: BLE001 - keep the chaos going; the run reports
                logger.warning("chaos: server restart failed: %s", exc)
                self.injected["server_restart_failures"] += 1
        if not server.running:
            self.pipeline.start_server()

    def kill_worker_mid_batch(self, worker: WorkerProcess) -> bool:
        """SIGKILL ``worker`` as soon as it holds messages (in flight, not yet deleted); gives
        up when the chaos stops first."""
        sqs = self.pipeline.clients.sqs
        while not self._stop.is_set() and worker.running:
            if read_queue_depth(sqs, self.pipeline.resources.queue_url).in_flight > 0:
                worker.kill()
                self.injected["worker_kills"] += 1
                logger.info("chaos: worker killed mid-batch")
                return True
            self._stop.wait(0.1)
        return False


_WORKER_KILL_WAIT_S = 180.0


def run_chaos(options: ChaosOptions, model_dir: Path, work_dir: Path) -> ChaosReport:
    rng = random.Random(options.seed)  # noqa: S311 - fault injection, not security
    started = time.monotonic()
    sessions = build_sessions(options, rng)
    all_chunks = [(s, c) for s in sessions for c in s.chunks]
    corrupt_count = (
        options.corrupt if options.corrupt is not None else max(1, len(all_chunks) // 100)
    )
    corrupt = set(rng.sample(range(len(all_chunks)), min(corrupt_count, len(all_chunks))))
    corrupt_keys: set[str] = set()
    server_port = free_port()
    proxy_rng = random.Random(rng.random())  # noqa: S311 - fault injection
    proxy = FaultProxy(f"http://127.0.0.1:{server_port}", options.faults, rng=proxy_rng)
    proxy.start()
    config = PipelineConfig(
        work_dir=work_dir,
        model_dir=model_dir,
        server_port=server_port,
        server_url_override=proxy.url,
        duplicate_probability=options.duplicate_rate,
        seed=options.seed,
        bucket_versioning=True,
        # The proxy's hangs outlast this; retries and the queue fallback take over.
        router_overrides={"read_timeout_s": 15.0, "health_timeout_s": 2.0},
        worker_overrides={"VISIBILITY_TIMEOUT_S": "20", "HEARTBEAT_INTERVAL_S": "5"},
        worker_idle_exit_s=3.0,
    )
    report = ChaosReport(sessions=len(sessions), corrupt=len(corrupt))
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    router_log = (work_dir / "logs" / "router.log").open("w", encoding="utf-8")
    try:
        with router_log, LocalPipeline(config) as pipeline, redirect_router_output(router_log):
            chaos = Chaos(pipeline, options, rng)
            chaos.start()
            order = list(range(len(all_chunks)))
            # Sessions interleave as concurrent uploaders would; chunks in order per session.
            order.sort(key=lambda i: (all_chunks[i][1].index, rng.random()))
            manifest_last = {s.session_id for s in sessions if rng.random() < 0.2}
            for session in sessions:
                if session.session_id not in manifest_last:
                    pipeline.upload_manifest(session)
            # Stays up through the upload phase (no idle exit) until the killer strikes.
            worker = pipeline.start_worker(name="chaos-worker", env={"IDLE_EXIT_S": "3600"})
            killer = threading.Thread(
                target=chaos.kill_worker_mid_batch, args=(worker,), daemon=True
            )
            killer.start()
            for position in order:
                session, chunk = all_chunks[position]
                if position in corrupt:
                    key = pipeline.upload_chunk(session, chunk.index, body=CORRUPT_BODY)
                    corrupt_keys.add(key)
                else:
                    pipeline.upload_chunk(session, chunk.index)
                report.uploaded += 1
                time.sleep(1.0 / options.upload_rate_per_s)
            for session in sessions:
                if session.session_id in manifest_last:
                    pipeline.upload_manifest(session)
            pipeline.wait_router_idle(timeout_s=3600)
            # On a loaded machine the worker may still be loading its model when the router is
            # done: the kill mid-batch waits for its first batch rather than being skipped.
            killer.join(timeout=_WORKER_KILL_WAIT_S)
            chaos.stop()
            killer.join()
            worker.stop()
            _drain(pipeline)
            pipeline.wait_router_idle(timeout_s=600)
            _count(pipeline, sessions, corrupt_keys, report)
            report.injected = {
                **dict(chaos.injected),
                **{f"proxy_{k}": v for k, v in proxy.counts.items() if k != "pass"},
                "duplicate_deliveries": sum(i.duplicate_delivery for i in pipeline.invocations),
            }
    finally:
        proxy.stop()
    report.wall_s = time.monotonic() - started
    return report


def _drain(pipeline: LocalPipeline, rounds: int = 30) -> None:
    """Workers until the queue is empty: messages a killed worker held come back after their
    visibility timeout, corrupt ones after their retries go to the DLQ."""
    for _ in range(rounds):
        if pipeline.work_queue_depth() == 0:
            return
        pipeline.run_worker(name="drain-worker")
    logger.warning("the queue still holds %d messages", pipeline.work_queue_depth())


def _versions(pipeline: LocalPipeline, prefix: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    paginator = pipeline.clients.s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=pipeline.config.names.bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            counts[version["Key"]] += 1
    return counts


def _count(
    pipeline: LocalPipeline,
    sessions: list[LocalSession],
    corrupt_keys: set[str],
    report: ChaosReport,
) -> None:
    layout = pipeline.layout
    versions = _versions(pipeline, layout.transcript_prefix)
    dead: dict[str, str] = {}
    for record in pipeline.peek_queue(pipeline.resources.router_failure_queue_url):
        key = record["requestPayload"]["detail"]["object"]["key"]
        dead[key] = f"router: {record['responsePayload']['errorMessage'][:100]}"
    for message in pipeline.peek_queue(pipeline.resources.dead_letter_queue_url):
        dead.setdefault(str(message.get("key")), "worker: redriven to the DLQ after retries")
    report.dead_letters = sorted(dead.items())
    report.dlq_is_exactly_corrupt = set(dead) == corrupt_keys
    outcomes: Counter[str] = Counter()
    work: Counter[str] = Counter()
    for invocation in pipeline.invocations:
        result: dict[str, Any] = invocation.result or {}
        status = "failed" if invocation.error else str(result.get("status"))
        outcomes[status + (" (duplicate)" if result.get("duplicate") else "")] += 1
        if status in {"forwarded", "queued"} and not result.get("duplicate"):
            work[f"{result.get('uri')} {status}"] += 1
    report.routes = dict(outcomes)
    report.duplicated = sorted(k for k, n in versions.items() if n > 1)
    report.duplicated += sorted(k for k, n in work.items() if n > 1)
    for session in sessions:
        present = 0
        complete = True
        for chunk in session.chunks:
            audio_key = session.chunk_key(layout, chunk)
            transcript_key = layout.chunk_transcript(session.session_id, chunk.index)
            if versions.get(transcript_key):
                present += 1
            elif audio_key in dead:
                complete = False
            else:
                report.lost.append(audio_key)
                complete = False
        report.transcribed += present
        stitched = versions.get(layout.session_transcript(session.session_id), 0)
        if complete:
            report.sessions_complete += 1
            if stitched == 0:
                report.complete_not_stitched.append(session.session_id)
        if stitched == 1:
            report.sessions_stitched_once += 1
        elif stitched > 1:
            report.sessions_stitched_twice.append(session.session_id)
