"""POST /transcribe-s3 through the chunk job, with a fake engine on moto: its edges (issue 18
item 11), the caps through the API (P18) and what it records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from server.app import create_app
from server.runtime import Runtime, default_s3_client
from tests.server.chunk_support import CORRUPT_AUDIO, FakeEngine, FaultyS3, SlowBody, wav_bytes
from tests.server.conftest import AUTH, BUCKET, make_settings
from tests.transcript_store.factories import chunk_transcript

AUDIO_KEY = "audio/s1/chunk-0002.wav"
OUTPUT_KEY = "transcripts/s1/chunk-0002.json"
REQUEST = {
    "s3_input_path": f"s3://{BUCKET}/{AUDIO_KEY}",
    "s3_output_path": f"s3://{BUCKET}/{OUTPUT_KEY}",
}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyS3]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        real = boto3.client("s3", region_name="us-east-1")
        real.create_bucket(Bucket=BUCKET)
        yield FaultyS3(real)


def serve(s3: FaultyS3, **overrides: Any) -> tuple[TestClient, Runtime]:
    runtime = Runtime(
        make_settings(**overrides),
        engine_loader=lambda _settings: FakeEngine(),
        s3_factory=lambda _settings: s3,  # type: ignore[arg-type,return-value]
    )
    client = TestClient(create_app(runtime))
    return client, runtime


def post(s3: FaultyS3, body: dict[str, Any] = REQUEST, **overrides: Any) -> Any:
    client, runtime = serve(s3, **overrides)
    with client:
        assert runtime.wait_loaded(30), runtime.load_error
        response = client.post("/transcribe-s3", headers=AUTH, json=body)
        # Whatever the answer, the server goes on serving (P18: a cap never takes it down).
        assert client.get("/health").status_code == 200
    return response


def test_writes_the_transcript_recording_the_direct_path(s3: FaultyS3) -> None:
    s3._real.put_object(Bucket=BUCKET, Key=AUDIO_KEY, Body=wav_bytes(1.5))
    response = post(s3)
    assert response.status_code == 200, response.text
    assert response.json()["written"] is True
    stored = json.loads(s3._real.get_object(Bucket=BUCKET, Key=OUTPUT_KEY)["Body"].read())
    assert stored["transcribed_by"] == "server-direct"
    assert stored["duration_s"] == pytest.approx(1.5)


def test_a_corrupt_stored_transcript_is_a_409_not_a_500(s3: FaultyS3) -> None:
    s3._real.put_object(Bucket=BUCKET, Key=AUDIO_KEY, Body=wav_bytes())
    s3._real.put_object(Bucket=BUCKET, Key=OUTPUT_KEY, Body=b'{"not": "a transcript"')
    response = post(s3)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert OUTPUT_KEY in error["message"] and "never overwritten" in error["message"]


def test_the_stored_transcript_is_read_under_the_size_cap(
    s3: FaultyS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old code read the stored transcript whole, whatever its size."""
    monkeypatch.setattr("transcript_store.s3.MAX_CHUNK_TRANSCRIPT_BYTES", 1024)
    s3._real.put_object(Bucket=BUCKET, Key=AUDIO_KEY, Body=wav_bytes())
    big = chunk_transcript("s1", 2, bucket=BUCKET, text="word " * 1000)
    s3._real.put_object(Bucket=BUCKET, Key=OUTPUT_KEY, Body=big.model_dump_json())
    response = post(s3)
    assert response.status_code == 409, response.text
    assert "over 1024" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("operation", "key"),
    [("get_object", OUTPUT_KEY), ("head_object", AUDIO_KEY), ("get_object", AUDIO_KEY)],
)
def test_s3_transport_errors_are_a_clear_502(s3: FaultyS3, operation: str, key: str) -> None:
    s3._real.put_object(Bucket=BUCKET, Key=AUDIO_KEY, Body=wav_bytes())
    if key == OUTPUT_KEY:
        # The "already transcribed" branch: the stored transcript exists, reading it fails.
        existing = chunk_transcript("s1", 2, bucket=BUCKET)
        s3._real.put_object(Bucket=BUCKET, Key=OUTPUT_KEY, Body=existing.model_dump_json())
    s3.fail(operation, key)
    response = post(s3)
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_error"
    assert "EndpointConnectionError" in response.json()["error"]["message"]


def test_fetch_timeout_bounds_the_whole_download(s3: FaultyS3) -> None:
    data = wav_bytes(2.0)
    s3._real.put_object(Bucket=BUCKET, Key=AUDIO_KEY, Body=data)
    real_get = s3._real.get_object

    def slow_get(**kwargs: Any) -> Any:
        answer = real_get(**kwargs)  # the ETag pin still applies
        return {**answer, "Body": SlowBody(data, parts=10, delay_s=0.2)}

    s3.faults[("get_object", AUDIO_KEY)] = slow_get
    response = post(s3, fetch_timeout_s=0.5)
    assert response.status_code == 502, response.text
    assert "FETCH_TIMEOUT_S" in response.json()["error"]["message"]
    assert s3._real.list_objects_v2(Bucket=BUCKET, Prefix="transcripts/").get("KeyCount") == 0


def test_the_input_client_has_timeouts_within_fetch_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    config: Any = default_s3_client(make_settings(fetch_timeout_s=3.0)).meta.config
    assert config.read_timeout == 3.0
    assert config.connect_timeout == 3.0
    config = default_s3_client(make_settings(fetch_timeout_s=60.0)).meta.config
    assert config.read_timeout == 60.0 and config.connect_timeout == 5.0


# -- P18 through the API --------------------------------------------------------------------


def test_s3_input_over_the_download_cap_is_413(s3: FaultyS3) -> None:
    s3._real.put_object(Bucket=BUCKET, Key=AUDIO_KEY, Body=wav_bytes(2.0))
    response = post(s3, max_download_bytes=10_000)
    assert response.status_code == 413, response.text
    assert "MAX_DOWNLOAD_BYTES" in response.json()["error"]["message"]


def test_s3_input_over_the_duration_cap_is_422(s3: FaultyS3) -> None:
    s3._real.put_object(Bucket=BUCKET, Key=AUDIO_KEY, Body=wav_bytes(3.0))
    response = post(s3, max_audio_seconds=2.0, max_decoded_audio_mb=1)
    assert response.status_code == 422, response.text


def test_undecodable_s3_input_is_415_and_nothing_is_written(s3: FaultyS3) -> None:
    s3._real.put_object(Bucket=BUCKET, Key=AUDIO_KEY, Body=CORRUPT_AUDIO)
    response = post(s3)
    assert response.status_code == 415, response.text
    assert s3._real.list_objects_v2(Bucket=BUCKET, Prefix="transcripts/").get("KeyCount") == 0


def test_url_input_over_the_download_cap_is_413(s3: FaultyS3) -> None:
    client, runtime = serve(s3, max_download_bytes=10_000)
    runtime.resolver = lambda host, port: ["93.184.215.14"]
    runtime.url_transport = httpx.MockTransport(
        lambda r: httpx.Response(200, content=wav_bytes(2.0))
    )
    with client:
        assert runtime.wait_loaded(30), runtime.load_error
        response = client.post(
            "/transcribe-url", headers=AUTH, json={"url": "https://cdn.example/a.wav"}
        )
        assert client.get("/health").status_code == 200
    assert response.status_code == 413, response.text
