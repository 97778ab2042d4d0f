"""The server's queue drainer (issue 15), measured on the local pipeline (moto's server, the real
server and worker processes, Whisper base on CPU).

- ``drain``: N queued chunks (the English sample chunks, two per session, queued by the router
  while the server is down). Then either the server starts (its drainer empties the queue) or
  the batch worker does; seconds from process start, and from ready (server healthy / the
  worker's "model loaded"), until the queue is empty.
- ``latency``: direct ``POST /transcribe-s3`` requests (one sample chunk, no output path) at
  random intervals, first with an empty queue, then while the drainer works through a full one
  (the router forces every upload to the queue). p50/p95 of both, against what a direct
  request can wait behind: each queued batch's time in the inference thread (the drainer logs
  it).

Run: ``.venv/bin/python benchmarks/drain_benchmark.py [--chunks 20] [--queued 32]
[--direct 12]`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from smart_router.local.lambda_runtime import redirect_router_output  # noqa: E402
from smart_router.local.pipeline import LocalPipeline, PipelineConfig  # noqa: E402
from smart_router.local.sessions import LocalSession, sample_sessions  # noqa: E402
from whisper_convert.prepare import prepare_default_model  # noqa: E402

PROBE_KEY = "probe/direct.ogg"  # outside the key grammar: the router ignores it (P2)
_BATCH_LINE = re.compile(r"drained a batch of (\d+) in ([\d.]+) s, ([\d.]+) s of it in inference")


def bench_sessions(chunks: int, prefix: str) -> list[LocalSession]:
    english = next(s for s in sample_sessions() if s.session_id == "demo-en")
    pair = english.chunks[:2]
    return [
        replace(english, session_id=f"{prefix}-{n}", chunks=pair) for n in range((chunks + 1) // 2)
    ]


def queue_while_down(pipeline: LocalPipeline, sessions: list[LocalSession]) -> int:
    for session in sessions:
        pipeline.upload_session(session)
    pipeline.wait_router_idle()
    return pipeline.work_queue_depth()


def drain_by_server(model_dir: Path, work: Path, chunks: int) -> dict[str, Any]:
    config = PipelineConfig(
        work_dir=work / "server", model_dir=model_dir, start_server=False, server_drains=True
    )
    with LocalPipeline(config) as pipeline:
        queued = queue_while_down(pipeline, bench_sessions(chunks, "drain"))
        started = time.monotonic()
        pipeline.start_server()
        healthy = time.monotonic()
        pipeline.wait_queue_drained()
        empty = time.monotonic()
    return {
        "queued": queued,
        "start_to_healthy_s": round(healthy - started, 2),
        "healthy_to_empty_s": round(empty - healthy, 2),
        "start_to_empty_s": round(empty - started, 2),
    }


def _worker_ready(log: Path) -> float | None:
    """The wall-clock time of the worker's "model loaded" line (JSON logs)."""
    for line in log.read_text(encoding="utf-8").splitlines():
        if '"model loaded"' in line:
            return datetime.fromisoformat(json.loads(line)["ts"]).timestamp()
    return None


def drain_by_worker(model_dir: Path, work: Path, chunks: int) -> dict[str, Any]:
    config = PipelineConfig(work_dir=work / "worker", model_dir=model_dir, start_server=False)
    with LocalPipeline(config) as pipeline:
        queued = queue_while_down(pipeline, bench_sessions(chunks, "drain"))
        started, started_wall = time.monotonic(), time.time()
        worker = pipeline.start_worker()
        pipeline.wait_queue_drained()
        empty, empty_wall = time.monotonic(), time.time()
        worker.wait(60)
        ready = _worker_ready(worker.log_path)
    return {
        "queued": queued,
        "start_to_ready_s": None if ready is None else round(ready - started_wall, 2),
        "ready_to_empty_s": None if ready is None else round(empty_wall - ready, 2),
        "start_to_empty_s": round(empty - started, 2),
    }


def _direct(client: httpx.Client, url: str, key: str, bucket: str) -> float:
    started = time.perf_counter()
    response = client.post(
        f"{url}/transcribe-s3",
        headers={"Authorization": f"Bearer {key}"},
        json={"s3_input_path": f"s3://{bucket}/{PROBE_KEY}", "language": "en"},
    )
    response.raise_for_status()
    return time.perf_counter() - started


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_s": round(statistics.median(ordered), 2), "p95_s": round(p95, 2)}


def _queued_inference_s(log: Path) -> list[float]:
    """Each drainer batch's time in the inference thread, from the server's log."""
    found = map(_BATCH_LINE.search, log.read_text(encoding="utf-8").splitlines())
    return [float(m.group(3)) for m in found if m]


def latency(model_dir: Path, work: Path, queued: int, direct: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 - request spacing, not security
    config = PipelineConfig(
        work_dir=work / "latency",
        model_dir=model_dir,
        server_drains=True,
        router_overrides={"force_queue": True},
    )
    with LocalPipeline(config) as pipeline:
        if pipeline.server is None:
            raise SystemExit("the pipeline started no server")
        url, bucket = pipeline.server.url, config.names.bucket
        probe = bench_sessions(2, "probe")[0].chunks[0].path.read_bytes()
        pipeline.clients.s3.put_object(Bucket=bucket, Key=PROBE_KEY, Body=probe)
        with httpx.Client(timeout=httpx.Timeout(300.0)) as client:
            _direct(client, url, pipeline.api_key, bucket)  # warm-up
            empty: list[float] = []
            for _ in range(direct):
                empty.append(_direct(client, url, pipeline.api_key, bucket))
                time.sleep(rng.uniform(0.2, 2.0))
            for session in bench_sessions(queued, "queued"):
                pipeline.upload_session(session)
            pipeline.wait_router_idle()
            busy: list[float] = []
            while len(busy) < direct and pipeline.work_queue_depth() > 0:
                time.sleep(rng.uniform(0.2, 2.0))
                busy.append(_direct(client, url, pipeline.api_key, bucket))
        pipeline.wait_queue_drained()
        batches = _queued_inference_s(config.work_dir / "logs" / "server.log")
    idle, full = _percentiles(empty), _percentiles(busy)
    return {
        "empty_queue": {"requests": len(empty), **idle},
        "full_queue": {"requests": len(busy), **full},
        "p50_difference_s": round(full["p50_s"] - idle["p50_s"], 2),
        "p95_difference_s": round(full["p95_s"] - idle["p95_s"], 2),
        "queued_batches": len(batches),
        "queued_batch_inference_s": _percentiles(batches) if batches else None,
        "queued_batch_inference_max_s": round(max(batches), 2) if batches else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--queued", type=int, default=32)
    parser.add_argument("--direct", type=int, default=12)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--skip", choices=("drain", "latency"), action="append", default=[])
    args = parser.parse_args()
    model_dir = prepare_default_model()
    report: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="drain-benchmark-") as tmp,
        (Path(tmp) / "router.log").open("w", encoding="utf-8") as router_log,
        # The router Lambda runs in this process and logs to stdout: the report goes there.
        redirect_router_output(router_log),
    ):
        work = Path(tmp)
        if "drain" not in args.skip:
            report["server_drainer"] = drain_by_server(model_dir, work, args.chunks)
            report["batch_worker"] = drain_by_worker(model_dir, work, args.chunks)
        if "latency" not in args.skip:
            report["direct_latency"] = latency(model_dir, work, args.queued, args.direct, args.seed)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
