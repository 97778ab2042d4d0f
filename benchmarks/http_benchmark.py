"""The engine through the HTTP server against faster-whisper behind an equivalent tiny server.

Issue 16's comparison: the same espeak-ng speech POSTed as WAV files, one request at a time, to

- ``engine``: ``python -m server`` (what ``smart-router serve`` runs) on CPU: POST /transcribe,
  whose segments carry times (alignment timestamps; always on); COMPUTE_TYPE and BATCH_SIZE
  from --compute-type / --batch-size;
- ``faster-whisper``: a FastAPI/uvicorn app defined in this file (``--fw-server``), POST
  /transcribe with faster-whisper's BatchedInferencePipeline on the original CTranslate2 weights
  (int8, beam 1, its VAD, batch 8), segments with its times; ``--fw-threads`` CTranslate2
  threads (default 2, the cores of the development machine).

Both servers run at once on loopback; rounds alternate which one goes first, so that the
machine's load drifts affect both alike. Per round and server: throughput (audio seconds per
wall second over all files) and WER over all files; the medians are printed, with each server
process's RSS (current and peak, from /proc) after the rounds. The engine's text is also fetched
once per file as SRT (/v1/audio/transcriptions) and scored after stripping the cues, to show
that the timestamped output costs no words. ``--soak N`` then sends N short requests to the
engine's server and prints its RSS every 50 (flat = within 5 %).

Run: ``.venv/bin/python benchmarks/http_benchmark.py --rounds 3 [--soak 500] [--json out.json]``
(the model must be prepared: ``smart-router model prepare``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

# At module level: FastAPI resolves the endpoint's annotations (strings here) in this namespace.
from fastapi import FastAPI, File, Form, UploadFile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.engine_benchmark import SENTENCES, build_audio, ct2_dir  # noqa: E402
from tests.support.speech import encode, wer  # noqa: E402
from whisper_engine.audio import SAMPLE_RATE  # noqa: E402

API_KEY = "benchmark-key"  # loopback only
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ENGINE_PORT = 8931
FW_PORT = 8932
TIMEOUT = httpx.Timeout(600.0, connect=5.0)


def fw_app(threads: int) -> Any:
    """faster-whisper behind POST /transcribe (multipart ``audio``, form ``language``)."""
    from faster_whisper import (  # type: ignore[import-untyped]
        BatchedInferencePipeline,
        WhisperModel,
        decode_audio,
    )

    model = WhisperModel(str(ct2_dir()), device="cpu", compute_type="int8", cpu_threads=threads)
    batched = BatchedInferencePipeline(model=model)
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.post("/transcribe")
    def transcribe(audio: UploadFile = File(...), language: str = Form("en")) -> dict[str, Any]:  # noqa: B008
        samples = decode_audio(io.BytesIO(audio.file.read()), sampling_rate=SAMPLE_RATE)
        segments, info = batched.transcribe(
            samples, language=language, beam_size=1, batch_size=8, vad_filter=True
        )
        items = [{"start": s.start, "end": s.end, "text": s.text.strip()} for s in segments]
        return {
            "transcription": " ".join(s["text"] for s in items),
            "segments": items,
            "duration": info.duration,
        }

    return app


def _start(command: list[str], env: dict[str, str], cwd: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own programs
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_healthy(port: int, process: subprocess.Popen[bytes], limit_s: float = 300) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"server on port {port} not healthy after {limit_s} s")


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def _post(client: httpx.Client, port: int, wav: bytes, language: str) -> str:
    response = client.post(
        f"http://127.0.0.1:{port}/transcribe",
        headers=AUTH,
        files={"audio": ("speech.wav", wav, "audio/wav")},
        data={"language": language},
    )
    response.raise_for_status()
    return str(response.json()["transcription"])


def _srt_text(client: httpx.Client, wav: bytes, language: str) -> str:
    response = client.post(
        f"http://127.0.0.1:{ENGINE_PORT}/v1/audio/transcriptions",
        headers=AUTH,
        files={"file": ("speech.wav", wav, "audio/wav")},
        data={"language": language, "response_format": "srt"},
    )
    response.raise_for_status()
    cues = [
        line
        for line in response.text.splitlines()
        if line.strip() and not line.strip().isdigit() and "-->" not in line
    ]
    return " ".join(cues)


def _files(tmp: Path) -> list[tuple[str, bytes, str, float]]:
    """(language, wav bytes, reference, seconds): each language's sentences in two orders."""
    files = []
    for language in ("en", "sv"):
        count = len(SENTENCES[language])
        for seed, order in ((7, None), (11, list(reversed(range(count))))):
            audio, reference = build_audio(language, seed=seed, order=order)
            path = encode(audio, tmp / f"{language}-{seed}.wav")
            files.append((language, path.read_bytes(), reference, audio.shape[0] / SAMPLE_RATE))
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compute-type", default="auto")
    parser.add_argument("--batch-size", default="")
    parser.add_argument("--fw-threads", type=int, default=2)
    parser.add_argument("--soak", type=int, default=0, help="short requests to the engine after")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--fw-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fw_server:
        import uvicorn

        uvicorn.run(fw_app(args.fw_threads), host="127.0.0.1", port=args.fw_server)
        return 0

    from whisper_convert.prepare import prepare_default_model

    model_dir = prepare_default_model()
    ct2_dir()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        files = _files(tmp)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MODEL_", "QUEUE_"))}
        base |= {"PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
        engine_env = base | {
            "API_KEY": API_KEY,
            "MODEL_ID": str(model_dir),
            "DEVICE": "cpu",
            "COMPUTE_TYPE": args.compute_type,
            "BATCH_SIZE": args.batch_size,
            "LANGUAGE": "en",
        }
        servers = {
            "engine": _start(
                [sys.executable, "-m", "server", "--port", str(ENGINE_PORT)],
                engine_env,
                name,
                tmp / "engine.log",
            ),
            "faster-whisper": _start(
                [
                    sys.executable,
                    __file__,
                    "--fw-server",
                    str(FW_PORT),
                    "--fw-threads",
                    str(args.fw_threads),
                ],
                base,
                name,
                tmp / "fw.log",
            ),
        }
        ports = {"engine": ENGINE_PORT, "faster-whisper": FW_PORT}
        try:
            report = _measure(args, files, servers, ports, tmp)
        finally:
            for process in servers.values():
                process.terminate()
                process.wait(30)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _measure(
    args: argparse.Namespace,
    files: list[tuple[str, bytes, str, float]],
    servers: dict[str, subprocess.Popen[bytes]],
    ports: dict[str, int],
    tmp: Path,
) -> dict[str, Any]:
    ready = {name: _wait_healthy(ports[name], process) for name, process in servers.items()}
    load_line = re.search(
        r"loaded Whisper model .* in ([0-9.]+) s", (tmp / "engine.log").read_text()
    )
    total_audio = sum(seconds for *_, seconds in files)
    print(f"{len(files)} files, {total_audio:.0f} s of speech; ready after {ready}", flush=True)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    with httpx.Client(timeout=TIMEOUT) as client:
        from tests.support.speech import synthesize

        warm = encode(synthesize(SENTENCES["en"][0], "en"), tmp / "warm.wav").read_bytes()
        for port in ports.values():  # a warm-up request each
            _post(client, port, warm, "en")
        for round_index in range(args.rounds):
            order = list(servers) if round_index % 2 == 0 else list(reversed(servers))
            for name in order:
                started = time.perf_counter()
                texts = [_post(client, ports[name], wav, lang) for lang, wav, _, _ in files]
                elapsed = time.perf_counter() - started
                scores = {
                    lang: wer(
                        " ".join(r for (l2, _, r, _) in files if l2 == lang),
                        " ".join(t for t, (l2, *_) in zip(texts, files, strict=True) if l2 == lang),
                    )
                    for lang in ("en", "sv")
                }
                runs[name].append(
                    {"speed": total_audio / elapsed, **{f"wer_{k}": v for k, v in scores.items()}}
                )
                print(f"round {round_index} {name:<15} {total_audio / elapsed:5.1f}x real time  "
                      f"WER en {scores['en']:.3f} sv {scores['sv']:.3f}", flush=True)  # fmt: skip
        srt = {
            lang: wer(
                " ".join(r for (l2, _, r, _) in files if l2 == lang),
                " ".join(_srt_text(client, wav, l2) for (l2, wav, _, _) in files if l2 == lang),
            )
            for lang in ("en", "sv")
        }
        report: dict[str, Any] = {"runs": runs, "srt_wer": srt, "ready_s": ready}
        for name, process in servers.items():
            rss, peak = _rss_mb(process.pid)
            medians = {k: statistics.median(r[k] for r in runs[name]) for k in runs[name][0]}
            report[name] = {"median": medians, "rss_mb": rss, "peak_rss_mb": peak}
            print(f"{name:<15} median {medians['speed']:5.1f}x real time, WER en "
                  f"{medians['wer_en']:.3f} sv {medians['wer_sv']:.3f}; RSS {rss:.0f} MB "
                  f"(peak {peak:.0f} MB)", flush=True)  # fmt: skip
        ratio = report["engine"]["median"]["speed"] / report["faster-whisper"]["median"]["speed"]
        report["ratio"] = ratio
        load = load_line.group(1) if load_line else "?"
        print(f"engine / faster-whisper throughput: {ratio:.2f}; engine SRT WER en "
              f"{srt['en']:.3f} sv {srt['sv']:.3f}; model load {load} s", flush=True)  # fmt: skip
        if args.soak:
            report["soak"] = _soak(client, servers["engine"].pid, args.soak)
    return report


def _soak(client: httpx.Client, pid: int, count: int) -> list[tuple[int, float]]:
    from tests.support.speech import synthesize

    clip = encode(synthesize(SENTENCES["en"][0], "en"), Path(tempfile.mkdtemp()) / "clip.wav")
    wav = clip.read_bytes()
    samples: list[tuple[int, float]] = []
    for index in range(1, count + 1):
        _post(client, ENGINE_PORT, wav, "en")
        if index % 50 == 0:
            rss, _ = _rss_mb(pid)
            samples.append((index, rss))
            print(f"soak {index:4d} requests: engine RSS {rss:.0f} MB", flush=True)
    first, last = samples[0][1], samples[-1][1]
    spread = (max(r for _, r in samples) - min(r for _, r in samples)) / first
    print(f"soak: RSS {first:.0f} -> {last:.0f} MB ({(last - first) / first:+.1%}), "
          f"max-min {spread:.1%} of the first sample", flush=True)  # fmt: skip
    return samples


if __name__ == "__main__":
    raise SystemExit(main())
