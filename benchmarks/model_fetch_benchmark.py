"""Download + verify time of a registry model (issue 17): what a server or worker pays at start.

Publishes the prepared Whisper base model to moto's S3 server (a thread, real HTTP on loopback)
and measures, each ``--runs`` times:

- ``cold``: `fetch_model` into an empty cache: pointer, manifest, every file streamed and
  hashed (sha256) while it is written, verified marker;
- ``warm``: the same call on the verified cache (marker + sizes, no download);
- ``hash``: sha256 of every cached file again (the cost of verifying without the marker).

Loopback is not S3: on EC2, cold time is bounded by S3 throughput (single stream per file,
up to 4 files at once); the hash figure is the machine's verification floor.
Run: ``.venv/bin/python benchmarks/model_fetch_benchmark.py [--runs 3] [--model-dir DIR]``.
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=None, help="default: prepared model")
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import WSGIRequestHandler

    from model_registry.fetch import fetch_model
    from model_registry.manifest import hash_file
    from model_registry.publish import publish
    from whisper_convert.prepare import prepare_default_model

    model_dir = args.model_dir or prepare_default_model()
    # The request log would drown the figures.
    WSGIRequestHandler.log_request = lambda *args, **kwargs: None  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto accepts any credentials; these are not secrets.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-north-1",
        }
    )
    s3: Any = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="eu-north-1")
    s3.create_bucket(
        Bucket="model-bench", CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
    )
    uri = "s3://model-bench/models/whisper-base/"
    try:
        started = time.perf_counter()
        result = publish(model_dir, uri, s3=s3)
        publish_s = time.perf_counter() - started
        size_mb = result.manifest.total_size / 1e6
        cold: list[float] = []
        warm: list[float] = []
        hashed: list[float] = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="model-cache-") as cache:
                local = fetch_model(uri, s3=s3, cache_dir=cache)
                cold.append(local.seconds)
                warm.append(fetch_model(uri, s3=s3, cache_dir=cache).seconds)
                started = time.perf_counter()
                for entry in local.manifest.files:
                    hash_file(local.path / entry.path)
                hashed.append(time.perf_counter() - started)
    finally:
        server.stop()
    report = {
        "model": str(model_dir),
        "files": len(result.manifest.files),
        "megabytes": round(size_mb, 1),
        "publish_s": round(publish_s, 2),
        "cold_fetch_s": _summary(cold),
        "cold_fetch_mb_per_s": round(size_mb / statistics.median(cold), 1),
        "warm_fetch_s": _summary(warm),
        "rehash_s": _summary(hashed),
        "rehash_mb_per_s": round(size_mb / statistics.median(hashed), 1),
    }
    print(json.dumps(report, indent=2))
    return 0


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


if __name__ == "__main__":
    sys.exit(main())
