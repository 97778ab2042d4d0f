"""The session's language through the chunk job, on the queue path (issue 18, docs/design.md
§2 "Session language"): detected once and kept, never a silent default, contradictions noted,
a manifest language Whisper does not know ignored without failing the chunk."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from batch_worker.worker import EXIT_OK
from tests.batch_worker.support import Aws, settings, wav_bytes, worker
from whisper_engine.results import Segment, TranscriptionResult

# What the fake engine "hears" in each test audio, told apart by its length.
ENGLISH_S, SWEDISH_S, UNCLEAR_S = 0.5, 0.7, 0.9
HEARD = {ENGLISH_S: ("en", 0.96), SWEDISH_S: ("sv", 0.95), UNCLEAR_S: ("sv", 0.6)}


class HearingEngine:
    """Reports the language it hears (pooled detection) whatever it was told, like Whisper;
    told ``auto`` it transcribes in what it heard."""

    def __init__(self) -> None:
        self.told: list[str | None] = []

    def transcribe_many(
        self, audios: Sequence[Any], *, language: Any = None
    ) -> list[TranscriptionResult]:
        languages = (
            list(language) if isinstance(language, list | tuple) else [language] * len(audios)
        )
        results = []
        for samples, told in zip(audios, languages, strict=True):
            self.told.append(told)
            duration = round(samples.shape[0] / 16_000, 1)
            heard, probability = HEARD[duration]
            used = heard if told in (None, "auto") else told
            results.append(
                TranscriptionResult(
                    text=f"words in {used}",
                    segments=[Segment(0.0, duration, f"words in {used}")],
                    language=used,
                    duration_s=duration,
                    model="fake-whisper",
                    detected_language=heard,
                    language_probability=probability,
                )
            )
        return results


def _run(aws: Aws, engine: HearingEngine, **overrides: Any) -> None:
    values: dict[str, Any] = {"language": "auto", "worker_batch_size": 1, **overrides}
    assert worker(aws, engine, settings(aws, **values)).run() == EXIT_OK


def test_the_first_detection_becomes_the_sessions_language(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(ENGLISH_S))
    aws.put_chunk("s1", 1, wav_bytes(UNCLEAR_S))  # on its own it would be taken for Swedish
    aws.put_manifest("s1", 2)
    engine = HearingEngine()
    _run(aws, engine)
    # Never a silent default: the first chunk is detected, the second told the session's.
    assert engine.told == ["auto", "en"]
    assert aws.json("transcripts/s1/language.json")["language"] == "en"
    first = aws.json("transcripts/s1/chunk-0000.json")
    second = aws.json("transcripts/s1/chunk-0001.json")
    assert (first["language"], first["detected_language"], first["language_probability"]) == (
        "en",
        "en",
        0.96,
    )
    assert (second["language"], second["detected_language"]) == ("en", "sv")
    assert "language_warning" not in second  # 0.6 is no contradiction worth a claim
    assert aws.json("transcripts/s1/session.json")["language"] == "en"


def test_a_stated_language_contradicted_with_confidence_is_noted(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    aws.put_chunk("s2", 0, wav_bytes(ENGLISH_S))
    aws.put_manifest("s2", 1, language="sv")
    engine = HearingEngine()
    with caplog.at_level(logging.WARNING, logger="chunk_job"):
        _run(aws, engine)
    assert engine.told == ["sv"]  # obeyed: the uploader may know better
    transcript = aws.json("transcripts/s2/chunk-0000.json")
    assert transcript["language"] == "sv" and transcript["detected_language"] == "en"
    assert "'en'" in transcript["language_warning"]
    assert any("sounds like 'en'" in r.getMessage() for r in caplog.records)
    session = aws.json("transcripts/s2/session.json")
    assert session["chunks"][0]["language_warning"] == transcript["language_warning"]
    assert aws.keys("transcripts/s2/language.json") == []  # stated: nothing detected to keep


@pytest.mark.parametrize("stated", ["swedish", "xx"])
def test_a_manifest_language_whisper_does_not_know_does_not_fail_the_chunk(
    aws: Aws, stated: str
) -> None:
    aws.put_chunk("s3", 0, wav_bytes(SWEDISH_S))
    aws.put_manifest("s3", 1, language=stated)
    engine = HearingEngine()
    _run(aws, engine)
    assert engine.told == ["auto"]
    assert aws.json("transcripts/s3/chunk-0000.json")["language"] == "sv"
    assert aws.json("transcripts/s3/session.json")["language"] == "sv"
    assert aws.counts() == (0, 0) and aws.dlq_bodies() == []


def test_a_deployment_language_is_used_and_nothing_is_recorded(aws: Aws) -> None:
    aws.put_chunk("s4", 0, wav_bytes(SWEDISH_S))
    engine = HearingEngine()
    _run(aws, engine, language="sv")
    assert engine.told == ["sv"]
    assert aws.keys("transcripts/s4/language.json") == []
