"""Never a silent translation, on the real engine (Whisper base, CPU) and real speech (issue 18):
with the shipped LANGUAGE a session that states no language is detected, not told Swedish; a
stated language the audio contradicts is obeyed but noted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from batch_worker.settings import WorkerSettings
from batch_worker.worker import EXIT_OK
from tests.batch_worker.support import Aws, settings, worker
from tests.support.speech import ENGLISH_TEXT, encode, wer

pytestmark = pytest.mark.slow


def test_english_speech_is_transcribed_in_english_unless_told_otherwise(
    aws: Aws, engine: object, english_speech: np.ndarray, tmp_path: Path
) -> None:
    audio = encode(english_speech, tmp_path / "talk.wav").read_bytes()
    aws.put_chunk("unstated", 0, audio)
    aws.put_manifest("unstated", 1)
    aws.put_chunk("stated", 0, audio)
    aws.put_manifest("stated", 1, language="sv")
    shipped = WorkerSettings.model_fields["language"].default
    assert worker(aws, engine, settings(aws, language=shipped)).run() == EXIT_OK

    # No language stated, the shipped LANGUAGE: detected, transcribed, kept for the session.
    unstated = aws.json("transcripts/unstated/chunk-0000.json")
    assert unstated["language"] == "en"
    assert wer(ENGLISH_TEXT, unstated["text"]) <= 0.25, unstated["text"]
    assert unstated["detected_language"] == "en" and unstated["language_probability"] >= 0.8
    assert aws.json("transcripts/unstated/language.json")["language"] == "en"
    assert "language_warning" not in unstated

    # Told Swedish: Whisper translates (WER over 1 against what was said), and says so.
    stated = aws.json("transcripts/stated/chunk-0000.json")
    assert stated["language"] == "sv"
    assert wer(ENGLISH_TEXT, stated["text"]) > 0.8, stated["text"]
    assert stated["detected_language"] == "en" and stated["language_probability"] >= 0.8
    assert "'en'" in stated["language_warning"]
    assert aws.json("transcripts/stated/session.json")["chunks"][0]["language_warning"]
