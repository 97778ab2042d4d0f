"""The API with the real local model (Whisper base converted offline) on CPU."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from openai import OpenAI

from server.runtime import Runtime
from tests.server.conftest import API_KEY, AUTH, BUCKET, MAX_UPLOAD
from tests.support.speech import ENGLISH_TEXT, wer
from transcript_contracts.models import ChunkTranscript

pytestmark = pytest.mark.slow

# Whisper base on espeak English: measured WER 0.02-0.05 here; the bound leaves margin.
ENGLISH_WER_BOUND = 0.15

Live = tuple[TestClient, Runtime]


def _healthy(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "healthy"


def test_health_reports_the_loaded_model(live: Live) -> None:
    client, _ = live
    body = client.get("/health").json()
    assert body["model_loaded"] is True
    assert body["device"] == "cpu"
    assert body["model"]
    assert body["memory_usage"]["rss_bytes"] > 0
    assert body["queue_depth"] == 0


def test_transcribe_upload_real_speech(live: Live, english_wav: bytes) -> None:
    client, _ = live
    response = client.post("/transcribe", headers=AUTH, files={"audio": ("a.wav", english_wav)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert wer(ENGLISH_TEXT, body["transcription"]) <= ENGLISH_WER_BOUND
    assert body["language"] == "en"
    assert body["duration"] > 5
    assert body["segments"]
    assert all(s["end"] >= s["start"] for s in body["segments"])
    assert set(body) >= {
        "transcription",
        "segments",
        "duration",
        "language",
        "model",
        "processing_time",
        "gpu_memory_used",
    }


@pytest.mark.parametrize(("fmt", "starts"), [("text", ""), ("srt", "1\n00:00:"), ("vtt", "WEBVTT")])
def test_transcribe_response_formats(live: Live, english_mp3: bytes, fmt: str, starts: str) -> None:
    client, _ = live
    response = client.post(
        "/transcribe",
        headers=AUTH,
        files={"audio": ("a.mp3", english_mp3)},
        data={"response_format": fmt, "language": "en"},
    )
    assert response.status_code == 200, response.text
    assert response.text.startswith(starts)
    assert "walk in the park" in response.text.lower()


def test_openai_client_every_format(live: Live, english_mp3: bytes) -> None:
    client, _ = live
    openai = OpenAI(api_key=API_KEY, base_url="http://testserver/v1", http_client=client)
    for fmt in ("json", "text", "srt", "vtt", "verbose_json"):
        result = openai.audio.transcriptions.create(
            model="whisper-1", file=("a.mp3", english_mp3), response_format=fmt, language="en"
        )
        text = result if isinstance(result, str) else result.text
        assert wer(ENGLISH_TEXT, text) <= ENGLISH_WER_BOUND if fmt in ("json", "text") else True
        assert "park" in text.lower(), (fmt, text)
        if fmt == "verbose_json":
            assert result.duration > 5  # type: ignore[union-attr]
            assert result.segments  # type: ignore[union-attr]


def test_transcribe_url_from_a_public_address(live: Live, english_mp3: bytes) -> None:
    client, runtime = live
    runtime.resolver = lambda host, port: ["93.184.215.14"]
    runtime.url_transport = httpx.MockTransport(lambda r: httpx.Response(200, content=english_mp3))
    response = client.post(
        "/transcribe-url",
        headers=AUTH,
        json={"url": "https://cdn.example/talk.mp3", "language": "en"},
    )
    assert response.status_code == 200, response.text
    assert wer(ENGLISH_TEXT, response.json()["transcription"]) <= ENGLISH_WER_BOUND
    refused = client.post(
        "/transcribe-url", headers=AUTH, json={"url": "https://169.254.169.254/latest/meta-data"}
    )
    assert refused.status_code == 400
    assert "not a public address" in refused.json()["error"]["message"]


@mock_aws
def test_transcribe_s3_writes_the_chunk_transcript_once(live: Live, english_mp3: bytes) -> None:
    client, runtime = live
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="audio/s1/chunk-0002.mp3", Body=english_mp3)
    runtime._s3 = s3
    request = {
        "s3_input_path": f"s3://{BUCKET}/audio/s1/chunk-0002.mp3",
        "s3_output_path": f"s3://{BUCKET}/transcripts/s1/chunk-0002.json",
        "language": "en",
    }
    first = client.post("/transcribe-s3", headers=AUTH, json=request)
    assert first.status_code == 200, first.text
    assert first.json()["written"] is True
    stored = ChunkTranscript.model_validate_json(
        s3.get_object(Bucket=BUCKET, Key="transcripts/s1/chunk-0002.json")["Body"].read()
    )
    assert (stored.session_id, stored.chunk_index) == ("s1", 2)
    assert stored.source.etag == s3.head_object(Bucket=BUCKET, Key="audio/s1/chunk-0002.mp3")[
        "ETag"
    ].strip('"')
    assert wer(ENGLISH_TEXT, stored.text) <= ENGLISH_WER_BOUND
    second = client.post("/transcribe-s3", headers=AUTH, json=request)
    assert second.status_code == 200
    assert second.json()["already_existed"] is True
    assert second.json()["transcription"] == stored.text

    # A writer that loses the create-only race (412) still succeeds and keeps the first bytes.
    from transcript_store import TranscriptStore

    before = s3.get_object(Bucket=BUCKET, Key="transcripts/s1/chunk-0002.json")["Body"].read()
    output_key = "transcripts/s1/chunk-0002.json"
    assert (
        TranscriptStore(s3).put_create_only(BUCKET, output_key, b"{}", "application/json") is False
    )
    assert (
        s3.get_object(Bucket=BUCKET, Key="transcripts/s1/chunk-0002.json")["Body"].read() == before
    )

    bad = [
        ({**request, "s3_input_path": "s3://other-bucket/audio/s1/chunk-0002.mp3"}, 400),
        ({**request, "s3_output_path": f"s3://{BUCKET}/transcripts/s1/chunk-0009.json"}, 400),
        ({**request, "s3_input_path": f"s3://{BUCKET}/audio/../etc/passwd"}, 400),
        ({"s3_input_path": f"s3://{BUCKET}/audio/s1/chunk-0404.mp3"}, 400),
    ]
    for body, status in bad:
        response = client.post("/transcribe-s3", headers=AUTH, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["message"]


def test_auth_on_everything_but_health(live: Live, english_wav: bytes) -> None:
    client, _ = live
    assert client.get("/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        for method, path in (
            ("get", "/metrics"),
            ("post", "/transcribe"),
            ("post", "/transcribe-s3"),
            ("post", "/transcribe-url"),
            ("post", "/v1/audio/transcriptions"),
        ):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (path, headers, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("name", "payload", "status"),
    [
        ("corrupt.mp3", b"ID3\x03\x00\x00\x00" + b"\xff\xfb\x90\x00garbage" * 200, 415),
        ("empty.wav", b"", 400),
        ("notes.txt", b"this is not audio at all, just text\n" * 50, 415),
        ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, 415),
    ],
)
def test_bad_audio_gets_4xx_and_the_server_stays_up(
    live: Live, name: str, payload: bytes, status: int
) -> None:
    client, _ = live
    response = client.post("/transcribe", headers=AUTH, files={"audio": (name, payload)})
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    _healthy(client)


def test_truncated_audio_is_refused(live: Live, english_wav: bytes) -> None:
    client, _ = live
    response = client.post(
        "/transcribe",
        headers=AUTH,
        files={"audio": ("t.wav", english_wav[: len(english_wav) // 3])},
    )
    assert response.status_code in (415, 422), response.text
    _healthy(client)


def test_upload_over_the_cap_is_413_and_serving_goes_on(live: Live, english_wav: bytes) -> None:
    client, _ = live
    big = b"\0" * (20 * 1024 * 1024)
    assert len(big) > MAX_UPLOAD
    response = client.post("/transcribe", headers=AUTH, files={"audio": ("big.wav", big)})
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]
    ok = client.post("/transcribe", headers=AUTH, files={"audio": ("a.wav", english_wav)})
    assert ok.status_code == 200


def test_chunked_upload_over_the_cap_is_413(live: Live) -> None:
    client, _ = live

    def body() -> Iterator[bytes]:
        # No Content-Length: the cap must hold while the body streams in.
        yield b'--b\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
        for _ in range(20):
            yield b"\0" * (1024 * 1024)
        yield b"\r\n--b--\r\n"

    headers = {**AUTH, "content-type": "multipart/form-data; boundary=b"}
    response = client.post("/transcribe", headers=headers, content=body())
    assert response.status_code == 413
    _healthy(client)


def test_three_hour_file_over_the_duration_cap_is_422(live: Live, three_hour_flac: bytes) -> None:
    client, _ = live
    assert len(three_hour_flac) < MAX_UPLOAD
    response = client.post(
        "/transcribe", headers=AUTH, files={"audio": ("long.flac", three_hour_flac)}
    )
    assert response.status_code == 422
    assert "10800" in response.json()["error"]["message"]
    _healthy(client)


def test_metrics_count_requests_and_audio(live: Live, english_wav: bytes) -> None:
    client, _ = live
    client.post("/transcribe", headers=AUTH, files={"audio": ("a.wav", english_wav)})
    text = client.get("/metrics", headers=AUTH).text
    assert 'transcription_requests_total{route="/transcribe",status="200"}' in text
    for name in (
        "transcription_audio_seconds_total",
        "transcription_real_time_factor_bucket",
        "transcription_queue_depth",
        "transcription_batch_size_bucket",
        "transcription_gpu_memory_bytes",
        "transcription_request_seconds_bucket",
    ):
        assert name in text
    audio = [
        line for line in text.splitlines() if line.startswith("transcription_audio_seconds_total")
    ]
    assert float(audio[0].split()[-1]) > 5


def test_validation_errors_are_json(live: Live) -> None:
    client, _ = live
    response = client.post("/transcribe-url", headers=AUTH, json={"nope": 1})
    assert response.status_code == 422
    assert json.loads(response.text)["error"]["code"] == "invalid_request"
    assert client.get("/nowhere", headers=AUTH).json()["error"]["code"] == "not_found"
