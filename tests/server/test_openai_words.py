"""Word timestamps on the OpenAI-compatible route, through OpenAI's own client (issue 16)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from server.runtime import Runtime
from tests.server.conftest import API_KEY, AUTH

pytestmark = pytest.mark.slow

Live = tuple[TestClient, Runtime]


def test_words_as_openai_returns_them(live: Live, english_mp3: bytes) -> None:
    client, _ = live
    openai = OpenAI(api_key=API_KEY, base_url="http://testserver/v1", http_client=client)
    result = openai.audio.transcriptions.create(
        model="whisper-1",
        file=("a.mp3", english_mp3),
        response_format="verbose_json",
        timestamp_granularities=["word"],
        language="en",
    )
    words = result.words or []
    assert len(words) >= 20
    assert result.segments is None  # only what was asked for, as OpenAI does
    assert " ".join(w.word for w in words) == result.text
    previous_end = 0.0
    for word in words:
        assert word.word == word.word.strip() and word.word
        assert previous_end - 1e-6 <= word.start <= word.end <= result.duration
        previous_end = word.end

    both = openai.audio.transcriptions.create(
        model="whisper-1",
        file=("a.mp3", english_mp3),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    assert both.segments and both.words
    for segment in both.segments:
        inside = [w for w in both.words if segment.start <= w.start < segment.end]
        assert all(w.end <= segment.end + 1e-6 for w in inside)


def test_granularities_need_verbose_json(live: Live, english_mp3: bytes) -> None:
    client, _ = live
    response = client.post(
        "/v1/audio/transcriptions",
        headers=AUTH,
        files={"file": ("a.mp3", english_mp3)},
        data={"response_format": "json", "timestamp_granularities[]": "word"},
    )
    assert response.status_code == 400, response.text
    assert "verbose_json" in response.json()["error"]["message"]
