"""The engine end to end on the real offline model (Whisper base) and espeak-ng speech.

WER bounds were measured on this machine (Whisper base, espeak-ng 1.51 voices, greedy, CPU,
1 and 2 torch threads alike; issue 18): English 0.00 (wav) and 0.15 (mp3: the first words of
the lossy copy come out wrong); Swedish 0.425 (wav) and 0.675 (mp3). The same weights in
faster-whisper (the original CTranslate2 model, greedy) give Swedish 0.425-0.575 (wav) and
0.475-0.625 (mp3) with and without its VAD: espeak's Swedish voice is hard for Whisper base and
a few flipped words move the rate by 0.05-0.15. The bounds sit about 0.075 above the worst of
those, and well below failures in kind: English audio decoded as Swedish gives 1.12, this
Swedish audio decoded as English 1.00, or auto-detected (as Latin) 0.925; a loop or a dropped
window gives a WER near or above 1. Reproduce: ``pytest tests/whisper_engine/test_engine.py
-k wer_within -s`` prints each measured rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.speech import ENGLISH_TEXT, SWEDISH_TEXT, encode, wer
from whisper_engine.audio import SAMPLE_RATE
from whisper_engine.errors import (
    AudioDecodeError,
    AudioTooLongError,
    TranscriptionError,
    UnsupportedLanguageError,
)

pytestmark = pytest.mark.slow

ENGLISH_MAX_WER = 0.25
# Per container: the lossy mp3 copy loses a few more Swedish words (see the module docstring).
SWEDISH_MAX_WER = {"wav": 0.65, "mp3": 0.75}


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


@pytest.mark.parametrize(
    ("voice", "text", "bound"),
    [
        ("en", ENGLISH_TEXT, {"wav": ENGLISH_MAX_WER, "mp3": ENGLISH_MAX_WER}),
        ("sv", SWEDISH_TEXT, SWEDISH_MAX_WER),
    ],
)
def test_wer_within_bound_for_wav_and_mp3(
    engine: Any,
    english_speech: np.ndarray,
    swedish_speech: np.ndarray,
    tmp_path: Path,
    voice: str,
    text: str,
    bound: dict[str, float],
) -> None:
    speech = english_speech if voice == "en" else swedish_speech
    for ext in ("wav", "mp3"):
        result = engine.transcribe(encode(speech, tmp_path / f"speech.{ext}"), language=voice)
        rate = wer(text, result.text)
        print(f"WER {voice} {ext}: {rate:.3f} (bound {bound[ext]})")
        assert rate <= bound[ext], (ext, rate, result.text)
        assert result.language == voice
        assert result.duration_s == pytest.approx(speech.shape[0] / SAMPLE_RATE, abs=0.1)
        assert result.timings.decode_s > 0
        assert result.timings.total_s >= result.timings.inference_s > 0


def test_silence_and_noise_give_empty_text(engine: Any) -> None:
    noise = np.random.default_rng(0).normal(0, 0.05, 8 * SAMPLE_RATE).astype(np.float32)
    hum = (0.2 * np.sin(2 * np.pi * 50 * np.arange(8 * SAMPLE_RATE) / SAMPLE_RATE)).astype(
        np.float32
    )
    results = engine.transcribe_many([_silence(8), noise, hum], language="sv")
    for result in results:
        assert result.text == ""
        assert result.segments == []


def test_segments_are_offset_ordered_and_inside_the_chunk(
    engine: Any, english_speech: np.ndarray, swedish_speech: np.ndarray
) -> None:
    # Over 30 s with long pauses: several windows, each cut in a silence.
    audio = np.concatenate([_silence(6), english_speech, _silence(4), english_speech])
    result = engine.transcribe(audio, language="en")
    assert result.segments[0].start >= 5.5
    previous_end = 0.0
    for segment in result.segments:
        assert previous_end - 0.05 <= segment.start <= segment.end <= result.duration_s
        previous_end = segment.end
    assert wer(f"{ENGLISH_TEXT} {ENGLISH_TEXT}", result.text) <= ENGLISH_MAX_WER
    second_half = [
        s for s in result.segments if s.start >= 6 + english_speech.shape[0] / SAMPLE_RATE
    ]
    assert second_half, "the second utterance's segments carry its offset"


def test_batch_of_several_audios_matches_one_by_one(
    engine: Any, english_speech: np.ndarray, swedish_speech: np.ndarray
) -> None:
    together = engine.transcribe_many([english_speech, swedish_speech], language=["en", "sv"])
    alone = [
        engine.transcribe(english_speech, language="en"),
        engine.transcribe(swedish_speech, language="sv"),
    ]
    assert [r.text for r in together] == [r.text for r in alone]
    assert [r.language for r in together] == ["en", "sv"]


def test_language_detection(engine: Any, english_speech: np.ndarray) -> None:
    result = engine.transcribe(english_speech, language="auto")
    assert result.language == "en"
    assert wer(ENGLISH_TEXT, result.text) <= ENGLISH_MAX_WER


def test_bad_inputs_raise_typed_errors(engine: Any, english_speech: np.ndarray) -> None:
    with pytest.raises(AudioDecodeError):
        engine.transcribe(b"definitely not audio" * 50)
    with pytest.raises(AudioTooLongError):
        engine.transcribe(encode_bytes(english_speech), max_duration_s=2.0)
    with pytest.raises(UnsupportedLanguageError):
        engine.transcribe(english_speech, language="xx")


def encode_bytes(samples: np.ndarray) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return encode(samples, Path(tmp) / "a.mp3").read_bytes()


def test_unload_releases_the_model(model_dir: Path) -> None:
    from whisper_engine.transcriber import EngineOptions, WhisperEngine

    own = WhisperEngine.load(model_dir, device="cpu", options=EngineOptions(use_vad=False))
    assert own.is_loaded
    own.unload()
    assert not own.is_loaded
    with pytest.raises(TranscriptionError, match="unloaded"):
        own.transcribe(_silence(1))
