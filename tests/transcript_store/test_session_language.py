"""The session's language: stated, set, recorded once, detected; contradictions and manifest
languages Whisper does not know (docs/design.md §2, "Session language")."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

import pytest
from mypy_boto3_s3 import S3Client

from tests.transcript_store.factories import BUCKET
from transcript_contracts.keys import KeyLayout
from transcript_contracts.language import WHISPER_LANGUAGES
from transcript_contracts.models import Manifest
from transcript_store import InvalidDocumentError, TranscriptStore
from transcript_store.session_language import (
    LanguageChoice,
    LanguageRecords,
    language_warning,
    manifest_language_problem,
    read_session_language,
    record_detected,
    report_manifest_language,
    session_language,
)

AT = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture
def records(store: TranscriptStore, layout: KeyLayout) -> LanguageRecords:
    return LanguageRecords(store, BUCKET, layout)


def test_the_whisper_language_list_is_the_tokenizers() -> None:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    assert set(LANGUAGES) == WHISPER_LANGUAGES


@pytest.mark.parametrize(
    ("stated", "default", "expected"),
    [
        ("en", "sv", LanguageChoice("en", "stated")),  # the manifest wins over LANGUAGE
        ("en", "auto", LanguageChoice("en", "stated")),
        (None, "sv", LanguageChoice("sv", "settings")),  # an all-Swedish deployment
        (None, "auto", LanguageChoice("auto", "detect")),  # nothing recorded yet
        ("auto", "auto", LanguageChoice("auto", "detect")),
        ("auto", "sv", LanguageChoice("auto", "detect")),  # the session asks for detection
        # not codes Whisper knows: as if nothing was stated, never passed on
        ("swedish", "auto", LanguageChoice("auto", "detect")),
        ("xx", "sv", LanguageChoice("sv", "settings")),
    ],
)
def test_choice_without_a_record(
    records: LanguageRecords, stated: str | None, default: str, expected: LanguageChoice
) -> None:
    assert session_language(records, "s1", stated, default) == expected


def test_the_first_detection_is_kept_for_the_session(
    records: LanguageRecords, s3: S3Client
) -> None:
    assert record_detected(records, "s1", "en", 0.96, chunk_index=2, now=AT) == "en"
    # A later chunk that heard something else does not change it: the first writer wins.
    assert record_detected(records, "s1", "de", 0.55, chunk_index=0, now=AT) == "en"
    assert session_language(records, "s1", None, "auto") == LanguageChoice("en", "session")
    # ...unless the session states one, or the deployment set one.
    assert session_language(records, "s1", "sv", "auto") == LanguageChoice("sv", "stated")
    assert session_language(records, "s1", None, "sv") == LanguageChoice("sv", "settings")
    stored = json.loads(
        s3.get_object(Bucket=BUCKET, Key="transcripts/s1/language.json")["Body"].read()
    )
    assert stored["language"] == "en" and stored["probability"] == 0.96
    assert stored["chunk_index"] == 2
    # Other sessions are untouched.
    assert session_language(records, "s2", None, "auto") == LanguageChoice("auto", "detect")


def test_racing_detections_agree_on_one_language(records: LanguageRecords) -> None:
    answers: list[str] = []
    barrier = threading.Barrier(6)

    def detect(language: str, index: int) -> None:
        barrier.wait()
        answers.append(record_detected(records, "race", language, 0.9, chunk_index=index))

    threads = [
        threading.Thread(target=detect, args=(lang, i))
        for i, lang in enumerate(["en", "sv", "en", "de", "sv", "en"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(answers)) == 1
    recorded = read_session_language(records, "race")
    assert recorded is not None and answers[0] == recorded.language


def test_a_record_that_is_not_one_is_refused(records: LanguageRecords, s3: S3Client) -> None:
    s3.put_object(Bucket=BUCKET, Key="transcripts/s1/language.json", Body=b'{"language": 1}')
    with pytest.raises(InvalidDocumentError):
        session_language(records, "s1", None, "auto")
    with pytest.raises(ValueError, match="Whisper"):
        record_detected(records, "s2", "klingon", 0.9, chunk_index=0)


@pytest.mark.parametrize(
    ("told", "detected", "probability", "warned"),
    [
        ("sv", "en", 0.96, True),  # English audio told Swedish: translated, say so
        ("sv", "en", 0.8, True),
        ("sv", "en", 0.79, False),  # unsure: no claim
        ("sv", "sv", 0.99, False),
        ("sv", "la", 0.57, False),  # espeak's Swedish: Whisper base is unsure, not contradicting
        ("auto", "en", 0.99, False),  # detected, nothing to contradict
        ("sv", None, None, False),
    ],
)
def test_confident_contradictions_are_noted(
    told: str, detected: str | None, probability: float | None, warned: bool
) -> None:
    warning = language_warning(told, detected, probability)
    assert (warning is not None) == warned
    if warning:
        assert repr(told) in warning and repr(detected) in warning


@pytest.mark.parametrize(
    ("language", "problem"),
    [
        (None, False),
        ("sv", False),
        ("auto", False),
        ("swedish", True),
        ("sv-SE", True),
        ("xx", True),
        ("SV", True),
    ],
)
def test_manifest_language_problems(language: str | None, problem: bool) -> None:
    manifest = Manifest(session_id="s1", chunk_count=2, language=language)
    assert (manifest_language_problem(manifest) is not None) == problem


def test_a_bad_manifest_language_is_reported_once_per_version(
    records: LanguageRecords, s3: S3Client, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = Manifest(session_id="s1", chunk_count=2, language="swedish")
    s3.put_object(Bucket=BUCKET, Key="audio/s1/manifest.json", Body=manifest.model_dump_json())
    with caplog.at_level(logging.ERROR, logger="transcript_store.session_language"):
        first = report_manifest_language(records, manifest, default="auto", now=AT)
        again = [report_manifest_language(records, manifest, default="auto") for _ in range(3)]
    assert first is True and again == [False, False, False]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "swedish" in errors[0].getMessage()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="transcripts/s1/failures/")["Contents"]
    [record] = [
        json.loads(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()) for o in listed
    ]
    assert record["field"] == "language" and record["value"] == "swedish"
    assert record["instead"] == "auto"
    # A re-upload (a new version) that is still wrong is reported again.
    s3.put_object(
        Bucket=BUCKET, Key="audio/s1/manifest.json", Body=manifest.model_dump_json() + " "
    )
    assert report_manifest_language(records, manifest, default="auto") is True


def test_a_usable_manifest_language_is_not_reported(records: LanguageRecords, s3: S3Client) -> None:
    manifest = Manifest(session_id="s1", chunk_count=2, language="sv")
    assert report_manifest_language(records, manifest, default="auto") is False
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="transcripts/")
