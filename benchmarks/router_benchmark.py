"""Router benchmarks: the Lambda package's size and cold import, and the latency the router adds
to each direct-path chunk.

1. Package: ``make -f router/Makefile build-RouterFunction`` (what ``sam build`` runs): the
   project wheel installed with its ``router`` extra by ``pip install --target``, as Lambda
   binary wheels. Size on disk, file count, zipped size. With ``sam`` on PATH (or ``--sam``),
   also ``sam build`` of the template's RouterFunction.
2. Cold import of ``router.handler`` from that package in a fresh interpreter (``-S``: no
   site-packages, only the package, as in Lambda), with Lambda's environment variables so the
   Tracer patches as it would there. Median of N runs after one warm-up (page cache warm).
3. Added latency per direct-path chunk on loopback: moto's server (a separate process) stands
   in for S3/SQS/DynamoDB, a tiny local HTTP server for the transcription server's /health and
   /transcribe-s3 (it writes the chunk transcript to S3 create-only, as the real one does). For
   each chunk: handler wall time minus the time spent inside the stand-in's /transcribe-s3.
   Included: event parsing, the transcript HEAD, the idempotency record (put + update), the
   health check, the manifest GET, the forward's HTTP overhead, the stitch check (manifest GET +
   list), logging and EMF metrics. Also the last chunk of small sessions (a real stitch).

Run: ``.venv/bin/python benchmarks/router_benchmark.py [--iterations 200] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REGION: Final = "eu-north-1"
BUCKET = "router-bench-bucket"
TABLE = "router-bench-idempotency"
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "transcription-router",
    "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_SERVICE_NAME": "router",
    "POWERTOOLS_METRICS_NAMESPACE": "SmartTranscriptionRouter",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
    }


# -- 1. package -----------------------------------------------------------------------------


def tree_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def zipped_size(path: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "package.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                archive.write(file, file.relative_to(path))
        return target.stat().st_size


def build_package(out: Path) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()
    make = shutil.which("make")
    if make is None:
        raise RuntimeError("make is needed to build the package (router/Makefile)")
    subprocess.run(  # noqa: S603 - our own Makefile
        [make, "-s", "-f", str(ROOT / "router" / "Makefile"), "build-RouterFunction"],
        # The import is measured with this interpreter, so the package takes its wheels
        # (template.yaml's runtime may be newer than the local Python: docs/infrastructure.md).
        env={
            **os.environ,
            "ARTIFACTS_DIR": str(out),
            "LAMBDA_PYTHON": f"{sys.version_info.major}.{sys.version_info.minor}",
        },
        check=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    size, files = tree_size(out)
    top = sorted(
        ((tree_size(p)[0] if p.is_dir() else p.stat().st_size, p.name) for p in out.iterdir()),
        reverse=True,
    )[:8]
    return {
        "build_s": round(seconds, 1),
        "unzipped_mb": round(size / 1e6, 1),
        "zipped_mb": round(zipped_size(out) / 1e6, 1),
        "files": files,
        "largest": [{"name": name, "mb": round(b / 1e6, 1)} for b, name in top],
        "forbidden_present": sorted(
            p.name for p in out.iterdir() if p.name in {"torch", "transformers", "fastapi", "numpy"}
        ),
    }


def sam_build(sam: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        template = str(ROOT / "template.yaml")
        result = subprocess.run(  # noqa: S603 - sam on our own template
            [sam, "build", "--template", template, "--build-dir", tmp, "RouterFunction"],
            env={**os.environ, "AWS_DEFAULT_REGION": REGION, "SAM_CLI_TELEMETRY": "0"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            return {"ok": False, "error": (result.stdout + result.stderr)[-2000:]}
        built = Path(tmp) / "RouterFunction"
        size, files = tree_size(built)
        return {
            "ok": True,
            "build_s": round(seconds, 1),
            "unzipped_mb": round(size / 1e6, 1),
            "zipped_mb": round(zipped_size(built) / 1e6, 1),
            "files": files,
        }


# -- 2. cold import -------------------------------------------------------------------------


def cpu_reference_ms() -> float:
    """This machine's speed right now (it shares its CPUs): a fixed pure-Python loop, best of
    three. Timings above are comparable across runs only at a similar reference."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(3_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


# The handler, and alone: boto3 (the floor of any handler using it) and the X-Ray SDK that
# Powertools Tracer imports (its recorder builds two botocore clients for sampling at import).
IMPORT_YARDSTICKS: Final = ("router.handler", "boto3", "aws_xray_sdk.core")

_IMPORT_CODE = """
import sys, time
sys.path.insert(0, {path!r})
t = time.perf_counter()
import {module}
elapsed = time.perf_counter() - t
assert {module}.__file__.startswith({path!r}), {module}.__file__
heavy = sorted(
    m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'fastapi', 'transformers')
)
print(elapsed, len(sys.modules), ','.join(heavy))
"""


def measure_import(package: Path, runs: int, *, isolated: bool) -> dict[str, Any]:
    """``isolated``: only the package on sys.path (-S); else the dev venv (site-packages).
    Each run imports ``router.handler`` in a fresh interpreter; boto3 and the X-Ray SDK alone
    are measured alternately as yardsticks."""
    # LAMBDA_TASK_ROOT (the code's directory, /var/task in Lambda) is what both Powertools and
    # the X-Ray SDK test for "in Lambda": without it the Tracer disables itself and the SDK
    # builds its centralised sampler (two botocore clients); in Lambda it uses a local sampler.
    env = {
        "PATH": os.environ.get("PATH", ""),
        **LAMBDA_ENV,
        "LAMBDA_TASK_ROOT": str(package),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
    }
    args = [sys.executable, *(["-S"] if isolated else []), "-c"]
    times: dict[str, list[float]] = {m: [] for m in IMPORT_YARDSTICKS}
    modules = 0
    with tempfile.TemporaryDirectory() as cwd:
        for i in range(runs + 1):
            for module in IMPORT_YARDSTICKS:
                if module != "router.handler" and not isolated:
                    continue
                out = subprocess.run(  # noqa: S603 - this interpreter, our own code
                    [*args, _IMPORT_CODE.format(path=str(package), module=module)],
                    env=env,
                    cwd=cwd,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                if len(out) > 2 and out[2]:
                    raise RuntimeError(f"heavy modules imported: {out[2]}")
                if i:  # the first run warms the page cache and writes any missing .pyc
                    times[module].append(float(out[0]))
                    if module == "router.handler":
                        modules = int(out[1])
    result: dict[str, Any] = {**summary_ms(times["router.handler"]), "modules": modules}
    if isolated:
        result["boto3_alone"] = summary_ms(times["boto3"])
        result["xray_sdk_alone"] = summary_ms(times["aws_xray_sdk.core"])
    return result


# -- 3. added latency -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603 - moto's server module
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class StandInServer:
    """The transcription server's /health and /transcribe-s3 on loopback."""

    def __init__(self, s3: Any) -> None:
        from tests.transcript_store.factories import chunk_transcript
        from transcript_contracts.keys import KeyLayout, parse_s3_uri
        from transcript_store import TranscriptStore

        self.server_seconds: list[float] = []
        self.server_cpu: list[float] = []
        store, layout = TranscriptStore(s3), KeyLayout()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # As uvicorn does: without it, headers and body go out as two segments and
            # Nagle + delayed ACK add 40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                cpu = time.thread_time()
                self._reply(200, {"status": "healthy", "model_loaded": True, "queue_depth": 0})
                owner.server_cpu.append(time.thread_time() - cpu)

            def do_POST(self) -> None:
                started, cpu = time.perf_counter(), time.thread_time()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                source = parse_s3_uri(body["s3_input_path"])
                chunk = layout.parse_audio_chunk(source.key)
                transcript = chunk_transcript(chunk.session_id, chunk.index, bucket=source.bucket)
                store.write_chunk_transcript(source.bucket, transcript, layout)
                owner.server_seconds.append(time.perf_counter() - started)
                self._reply(200, {"transcription": transcript.text, "duration": 10.0})
                owner.server_cpu.append(time.thread_time() - cpu)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()


class CallTimer:
    """Wall time of each AWS API call (botocore) and each HTTP request (httpx) while
    recording: what the router waits on."""

    def __init__(self) -> None:
        import botocore.client
        import httpx

        self.times: dict[str, list[float]] = {}
        self._on = False
        self._lock = threading.Lock()
        base: Any = botocore.client.BaseClient  # _make_api_call is private: not in the stubs
        api_call = base._make_api_call
        send = httpx.Client.send
        timer = self

        def timed_api_call(client: Any, operation: str, params: Any) -> Any:
            started = time.perf_counter()
            try:
                return api_call(client, operation, params)
            finally:
                timer._add(operation, time.perf_counter() - started)

        def timed_send(client: Any, request: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return send(client, request, **kwargs)
            finally:
                timer._add(
                    f"HTTP {request.method} {request.url.path}", time.perf_counter() - started
                )

        base._make_api_call = timed_api_call
        httpx.Client.send = timed_send  # type: ignore[method-assign,assignment]

    def _add(self, name: str, seconds: float) -> None:
        if self._on:
            with self._lock:
                self.times.setdefault(name, []).append(seconds)

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        self._on = True
        try:
            yield
        finally:
            self._on = False

    def reset(self) -> None:
        self.times.clear()

    def summary(self, chunks: int) -> dict[str, dict[str, float]]:
        return {
            name: {
                "per_chunk": round(len(values) / chunks, 2),
                "p50_ms": round(percentile(values, 50) * 1000, 2),
            }
            for name, values in sorted(self.times.items())
        }


def make_event(key: str, etag: str) -> dict[str, Any]:
    sample = json.loads((ROOT / "tests" / "events" / "s3_object_created.json").read_text())
    sample["id"] = str(uuid.uuid4())
    sample["detail"]["bucket"]["name"] = BUCKET
    sample["detail"]["object"].update(key=key, etag=etag)
    return dict(sample)


def measure_latency(iterations: int, stitch_sessions: int, session_chunks: int) -> dict[str, Any]:
    with moto_server() as aws_url:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": aws_url,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "POWERTOOLS_TRACE_DISABLED": "true",
                **LAMBDA_ENV,
            }
        )
        import boto3
        from aws_lambda_powertools.utilities.typing import LambdaContext

        from router import handler
        from router.app import build_app
        from router.settings import RouterSettings
        from transcript_contracts.settings import load_settings

        class Context(LambdaContext):
            def __init__(self) -> None:
                self._function_name = "transcription-router"
                self._function_version = "$LATEST"
                self._invoked_function_arn = "arn:aws:lambda:eu-north-1:1:function:router"
                self._memory_limit_in_mb = 256
                self._aws_request_id = str(uuid.uuid4())
                self._deadline = time.monotonic() + 600

            def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
                return int((self._deadline - time.monotonic()) * 1000)

        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="work")[
            "QueueUrl"
        ]
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        stand_in = StandInServer(s3)
        settings = load_settings(
            RouterSettings,
            bucket_name=BUCKET,
            queue_url=queue_url,
            server_url=stand_in.url,
            api_key="bench-key",
            idempotency_table=TABLE,
        )
        calls = CallTimer()
        log_handler = handler.logger.registered_handler
        sink = io.StringIO()
        log_handler.setStream(sink)  # type: ignore[attr-defined]

        router_cpu: list[float] = []

        def run_chunk(key: str) -> tuple[float, float, dict[str, Any]]:
            etag = s3.put_object(Bucket=BUCKET, Key=key, Body=b"ID3 bench")["ETag"].strip('"')
            before, before_cpu = len(stand_in.server_seconds), len(stand_in.server_cpu)
            event = make_event(key, etag)
            with contextlib.redirect_stdout(sink), calls.recording():
                cpu = time.process_time()
                started = time.perf_counter()
                result = handler.lambda_handler(event, Context())
                total = time.perf_counter() - started
                cpu = time.process_time() - cpu
            if result["status"] != "forwarded":
                raise RuntimeError(f"unexpected outcome {result}")
            server = sum(stand_in.server_seconds[before:])
            # The stand-in runs in this process: its CPU is not the router's.
            router_cpu.append(cpu - sum(stand_in.server_cpu[before_cpu:]))
            sink.seek(0)
            sink.truncate()
            return total, server, result

        try:
            started = time.perf_counter()
            handler.set_app(build_app(settings))
            build_s = time.perf_counter() - started

            def steady_key(n: int) -> str:
                """Sessions of ``session_chunks`` chunks, each with a manifest of 1000 chunks:
                every chunk runs the stitch check (manifest + list), none completes."""
                session, index = divmod(n, session_chunks)
                if index == 0:
                    s3.put_object(
                        Bucket=BUCKET,
                        Key=f"audio/steady-{session}/manifest.json",
                        Body=json.dumps(
                            {"session_id": f"steady-{session}", "chunk_count": 1000}
                        ).encode(),
                    )
                return f"audio/steady-{session}/chunk-{index}.mp3"

            first_total, first_server, _ = run_chunk(steady_key(0))
            for n in range(1, 11):  # warm-up: connection pools, lazy imports
                run_chunk(steady_key(n))
            calls.reset()
            router_cpu.clear()
            added: list[float] = []
            totals: list[float] = []
            servers: list[float] = []
            for n in range(11, 11 + iterations):
                total, server, _ = run_chunk(steady_key(n))
                added.append(total - server)
                totals.append(total)
                servers.append(server)
            steady_calls = calls.summary(iterations)
            steady_cpu = list(router_cpu)
            stitch_added: list[float] = []
            for n in range(stitch_sessions):
                session = f"stitch-{n}"
                s3.put_object(
                    Bucket=BUCKET,
                    Key=f"audio/{session}/manifest.json",
                    Body=json.dumps({"session_id": session, "chunk_count": 4}).encode(),
                )
                for i in range(3):
                    run_chunk(f"audio/{session}/chunk-{i}.mp3")
                total, server, result = run_chunk(f"audio/{session}/chunk-3.mp3")
                if result["stitch"]["status"] != "stitched":
                    raise RuntimeError(f"expected a stitch: {result}")
                stitch_added.append(total - server)
        finally:
            handler.set_app(None)
            stand_in.close()
        return {
            "session_chunks": session_chunks,
            "build_app_ms": round(build_s * 1000, 1),
            "first_chunk_added_ms": round((first_total - first_server) * 1000, 1),
            "added": summary_ms(added),
            "handler_total": summary_ms(totals),
            "stand_in_server": summary_ms(servers),
            "router_cpu": summary_ms(steady_cpu),
            "calls_per_chunk": steady_calls,
            "last_chunk_with_stitch_added": summary_ms(stitch_added) if stitch_added else None,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--stitch-sessions", type=int, default=20)
    parser.add_argument("--session-chunks", type=int, default=50, help="chunks per session")
    parser.add_argument("--import-runs", type=int, default=10)
    parser.add_argument("--skip-build", action="store_true", help="import from the dev venv")
    parser.add_argument("--sam", default=shutil.which("sam"), help="sam executable (optional)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "cpu_reference_ms_before": cpu_reference_ms(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_build:
            package = Path(tmp) / "router-package"
            report["package"] = build_package(package)
            report["import_isolated_package"] = measure_import(
                package, args.import_runs, isolated=True
            )
        report["import_dev_venv"] = measure_import(ROOT, args.import_runs, isolated=False)
    if args.sam:
        report["sam_build"] = sam_build(args.sam)
    report["latency"] = measure_latency(args.iterations, args.stitch_sessions, args.session_chunks)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["cpu_reference_ms_after"] = cpu_reference_ms()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
