"""The converted checkpoint decodes like the original CTranslate2 weights in faster-whisper.

faster-whisper runs in a child process: CTranslate2's and torch's OpenMP thread pools spin
against each other in one process and slow both down several times on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisper_engine.transcriber import EngineOptions, WhisperEngine

pytestmark = pytest.mark.slow

_CHILD = """
import json, sys
import numpy as np
from faster_whisper import WhisperModel
model_dir, audio_path, language = sys.argv[1:4]
model = WhisperModel(model_dir, device="cpu", compute_type="float32", cpu_threads=2)
segments, _ = model.transcribe(
    np.load(audio_path), language=language, beam_size=1, temperature=0.0, vad_filter=False,
    condition_on_previous_text=False,
)
print(json.dumps([[s.start, s.end, s.text.strip(), list(s.tokens)] for s in segments]))
"""


def _faster_whisper(model_dir: Path, audio: np.ndarray, language: str, tmp: Path) -> list[Any]:
    pytest.importorskip("faster_whisper")
    audio_path = tmp / "audio.npy"
    np.save(audio_path, audio)
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model_dir), str(audio_path), language],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return list(json.loads(completed.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("voice", ["en", "sv"])
def test_same_tokens_as_faster_whisper_on_the_original_weights(
    engine: Any,
    ct2_model_dir: Path,
    english_speech: np.ndarray,
    swedish_speech: np.ndarray,
    tmp_path: Path,
    voice: str,
) -> None:
    audio = english_speech if voice == "en" else swedish_speech
    reference = _faster_whisper(ct2_model_dir, audio, voice, tmp_path)
    # Same loaded model, no VAD: one 30 s window from sample 0, as faster-whisper decodes it.
    plain = WhisperEngine(engine.loaded, None, EngineOptions(use_vad=False))
    ours = plain.transcribe(audio, language=voice)
    assert [s.text for s in ours.segments] == [text for _, _, text, _ in reference]
    for segment, (start, end, _, _) in zip(ours.segments, reference, strict=True):
        assert segment.start == pytest.approx(start, abs=0.01)
        assert segment.end == pytest.approx(end, abs=0.01)
