"""Batch worker drain throughput vs the engine's standalone ``transcribe_many`` (issue 6).

Same chunks for both: espeak-ng English sentences (one per chunk, 3-6 s each) encoded as MP3.

- ``engine``: ``WhisperEngine.transcribe_many`` over the decoded arrays in batches of
  ``--batch-size`` (decoding not timed): the ceiling.
- ``worker``: ``batch_worker.Worker`` draining an SQS queue of the same chunks from S3, both
  emulated in-process by moto (``mock_aws``): receive, HEAD, download, decode, transcribe the
  batch together, create-only write, stitch, delete; timed from start to idle exit.

The two alternate ``--repeats`` times (the machine is shared; the median is reported).
Run: ``.venv/bin/python benchmarks/worker_benchmark.py [--chunks 20] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import numpy as np  # noqa: E402
from moto import mock_aws  # noqa: E402

from batch_worker.queue import WorkQueue  # noqa: E402
from batch_worker.settings import WorkerSettings  # noqa: E402
from batch_worker.worker import Worker, WorkerDeps  # noqa: E402
from benchmarks.engine_benchmark import SENTENCES as ENGINE_SENTENCES  # noqa: E402
from tests.support.speech import encode, synthesize  # noqa: E402
from transcript_contracts.keys import KeyLayout  # noqa: E402
from transcript_contracts.models import Manifest, QueueMessage, utc_now  # noqa: E402
from transcript_store import TranscriptStore  # noqa: E402
from whisper_engine.audio import SAMPLE_RATE, decode_audio  # noqa: E402
from whisper_engine.model import default_model_dir  # noqa: E402
from whisper_engine.transcriber import EngineOptions, WhisperEngine  # noqa: E402

# The engine benchmark's English sentences: the same corpus for both benchmarks.
SENTENCES = ENGINE_SENTENCES["en"][:10]
BUCKET = "worker-benchmark"
REGION: Final = "eu-north-1"
CHUNKS_PER_SESSION = 5


def make_chunks(count: int, directory: Path) -> list[bytes]:
    chunks = []
    for index in range(count):
        samples = synthesize(SENTENCES[index % len(SENTENCES)], "en", lead_s=0.3, tail_s=0.3)
        path = encode(samples, directory / f"chunk-{index}.mp3")
        chunks.append(path.read_bytes())
    return chunks


def run_engine(engine: WhisperEngine, arrays: list[Any], batch_size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(arrays), batch_size):
        engine.transcribe_many(arrays[start : start + batch_size], language="en")
    return time.perf_counter() - started


class TimedEngine:
    """The engine, with the wall time spent inside ``transcribe_many`` added up: the worker's
    overhead is then measured within one run, immune to the machine's load between runs."""

    def __init__(self, engine: WhisperEngine) -> None:
        self._engine = engine
        self.inference_s = 0.0

    def transcribe_many(self, audios: Any, *, language: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return self._engine.transcribe_many(audios, language=language)
        finally:
            self.inference_s += time.perf_counter() - started


def run_worker(engine: WhisperEngine, chunks: list[bytes], batch_size: int) -> dict[str, Any]:
    layout = KeyLayout()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="work")["QueueUrl"]
        sessions = (len(chunks) + CHUNKS_PER_SESSION - 1) // CHUNKS_PER_SESSION
        for number, data in enumerate(chunks):
            session_id, index = f"bench-{number // CHUNKS_PER_SESSION}", number % CHUNKS_PER_SESSION
            key = layout.audio_chunk(session_id, index, "mp3")
            etag = s3.put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"]
            message = QueueMessage(
                bucket=BUCKET,
                key=key,
                etag=etag,
                session_id=session_id,
                chunk_index=index,
                enqueued_at=utc_now(),
                reason="server_unhealthy",
            )
            sqs.send_message(QueueUrl=queue_url, MessageBody=message.to_body())
        for number in range(sessions):
            count = min(CHUNKS_PER_SESSION, len(chunks) - number * CHUNKS_PER_SESSION)
            manifest = Manifest(session_id=f"bench-{number}", chunk_count=count)
            s3.put_object(
                Bucket=BUCKET,
                Key=layout.manifest(f"bench-{number}"),
                Body=manifest.model_dump_json(),
            )
        settings = WorkerSettings(
            _env_file=None,
            bucket_name=BUCKET,
            queue_url=queue_url,
            language="en",
            worker_batch_size=batch_size,
            wait_time_s=0,
            idle_exit_s=0,
            log_level="WARNING",
        )
        timed = TimedEngine(engine)
        deps = WorkerDeps(
            settings=settings,
            queue=WorkQueue(sqs, queue_url),
            s3=s3,
            engine=timed,
            store=TranscriptStore(s3),
        )
        worker = Worker(deps)
        started = time.perf_counter()
        code = worker.run()
        elapsed = time.perf_counter() - started
        if code != 0 or worker.stats.transcribed != len(chunks):
            raise SystemExit(f"worker run incomplete: exit {code}, {worker.stats.to_dict()}")
        return {
            "wall_s": elapsed,
            "inference_s": timed.inference_s,
            "stitched": worker.stats.sessions_stitched,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)

    with tempfile.TemporaryDirectory() as tmp:
        chunks = make_chunks(args.chunks, Path(tmp))
    arrays = [decode_audio(data) for data in chunks]
    audio_s = sum(len(a) for a in arrays) / SAMPLE_RATE
    engine = WhisperEngine.load(
        default_model_dir(), device=args.device, options=EngineOptions(default_language="en")
    )
    engine.transcribe_many([np.zeros(SAMPLE_RATE, dtype=np.float32)], language="en")  # warm-up

    engine_runs: list[float] = []
    worker_runs: list[float] = []
    inference_shares: list[float] = []
    stitched = 0
    for _ in range(args.repeats):
        engine_runs.append(run_engine(engine, arrays, args.batch_size))
        result = run_worker(engine, chunks, args.batch_size)
        worker_runs.append(result["wall_s"])
        inference_shares.append(result["inference_s"] / result["wall_s"])
        stitched = result["stitched"]
    engine_s = statistics.median(engine_runs)
    worker_s = statistics.median(worker_runs)
    report = {
        "chunks": len(chunks),
        "audio_s": round(audio_s, 1),
        "batch_size": args.batch_size,
        "device": engine.device,
        "repeats": args.repeats,
        "engine_runs_s": [round(t, 2) for t in engine_runs],
        "worker_runs_s": [round(t, 2) for t in worker_runs],
        "engine_audio_s_per_s": round(audio_s / engine_s, 2),
        "worker_audio_s_per_s": round(audio_s / worker_s, 2),
        "engine_messages_per_s": round(len(chunks) / engine_s, 3),
        "worker_messages_per_s": round(len(chunks) / worker_s, 3),
        "worker_vs_engine": round(engine_s / worker_s, 3),
        # Share of the worker's wall time spent inside transcribe_many, per run: the rest is
        # queue, S3, decode, writes and stitching.
        "worker_inference_share": [round(x, 3) for x in inference_shares],
        "sessions_stitched_per_run": stitched,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
