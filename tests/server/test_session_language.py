"""The session's language on the direct path, ``POST /transcribe-s3`` (issue 18, docs/design.md
§2 "Session language"): the first chunk is detected and recorded, the next one is told it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import numpy as np
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from mypy_boto3_s3 import S3Client

from server.app import create_app
from server.runtime import Runtime
from tests.server.chunk_support import wav_bytes
from tests.server.conftest import AUTH, BUCKET, make_settings
from whisper_engine.results import Segment, TranscriptionResult


class HearingEngine:
    """Hears English (0.96) in everything; told ``auto`` it transcribes in what it heard."""

    model_name = "fake-whisper"
    device = "cpu"

    def __init__(self) -> None:
        self.told: list[Any] = []

    def transcribe_many(
        self, audios: Sequence[np.ndarray], *, language: Any = None
    ) -> list[TranscriptionResult]:
        many = isinstance(language, list | tuple)
        languages = list(language) if many else [language] * len(audios)
        self.told.extend(languages)
        return [
            TranscriptionResult(
                text="hello",
                segments=[Segment(0.0, 0.5, "hello")],
                language="en" if told in (None, "auto") else told,
                duration_s=a.shape[0] / 16_000,
                model=self.model_name,
                detected_language="en",
                language_probability=0.96,
            )
            for a, told in zip(audios, languages, strict=True)
        ]

    def unload(self) -> None:
        return None


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _request(index: int) -> dict[str, str]:
    return {
        "s3_input_path": f"s3://{BUCKET}/audio/s1/chunk-{index:04d}.wav",
        "s3_output_path": f"s3://{BUCKET}/transcripts/s1/chunk-{index:04d}.json",
    }


def _json(s3: S3Client, key: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return data


def test_detected_once_then_kept_for_the_session(s3: S3Client) -> None:
    for index in (0, 1):
        s3.put_object(Bucket=BUCKET, Key=f"audio/s1/chunk-{index:04d}.wav", Body=wav_bytes(0.5))
    engine = HearingEngine()
    runtime = Runtime(
        make_settings(language="auto"),
        engine_loader=lambda _settings: engine,
        s3_factory=lambda _settings: s3,
    )
    with TestClient(create_app(runtime)) as client:
        assert runtime.wait_loaded(10)
        for index in (0, 1):
            response = client.post("/transcribe-s3", headers=AUTH, json=_request(index))
            assert response.status_code == 200, response.text
    assert engine.told == ["auto", "en"]
    assert _json(s3, "transcripts/s1/language.json")["language"] == "en"
    first = _json(s3, "transcripts/s1/chunk-0000.json")
    assert (first["detected_language"], first["language_probability"]) == ("en", 0.96)
