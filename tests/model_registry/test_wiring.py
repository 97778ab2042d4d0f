"""The server and the worker load MODEL_ID=s3://...: a model that cannot be had is a load
failure that names the file (server: /health 503 with the reason; worker: exit 78 before the
queue is touched), logged as "model load failed: ..."; a good one names its version."""

from __future__ import annotations

import io
import json
import logging
import math
import struct
import wave
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import numpy as np
import pytest
from fastapi.testclient import TestClient

from batch_worker.main import EXIT_MODEL_LOAD_FAILED, run_worker
from chunk_job.transcript import build_transcript
from model_registry.publish import PublishResult, publish
from model_registry.resolve import LOAD_FAILED_MESSAGE
from server.app import create_app
from server.runtime import Runtime
from server.settings import ServerSettings
from tests.model_registry.conftest import BUCKET, MODEL_URI
from tests.support.queues import create_work_queues
from transcript_contracts.models import ChunkTranscript, Manifest, QueueMessage
from transcript_contracts.stitcher import stitch
from whisper_engine.results import Segment, TranscriptionResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

API_KEY = "registry-test-key-0123"


@pytest.fixture
def published(s3: S3Client, tiny_model: Path) -> PublishResult:
    return publish(tiny_model, MODEL_URI, s3=s3)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The worker's logging setup replaces the root handlers; put them back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class FakeEngine:
    """Stands in for WhisperEngine at the server's loader seam: the registry is under test."""

    device = "cpu"

    def __init__(self, model_dir: str) -> None:
        self.model_name = Path(model_dir).name

    def transcribe_many(
        self, audios: Sequence[np.ndarray], *, language: Any = None
    ) -> list[TranscriptionResult]:
        return [
            TranscriptionResult(
                text="hej",
                segments=[Segment(0.0, 0.5, "hej")],
                language="sv",
                duration_s=a.shape[0] / 16000,
                model=self.model_name,
            )
            for a in audios
        ]

    def unload(self) -> None:
        pass


def _settings(tmp_path: Path, **overrides: Any) -> ServerSettings:
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "model_id": MODEL_URI,
        "model_cache_dir": str(tmp_path / "cache"),
        "device": "cpu",
        "allowed_buckets": [BUCKET],
        **overrides,
    }
    return ServerSettings(_env_file=None, **values)


def test_server_answers_503_naming_the_missing_file(
    s3: S3Client, published: PublishResult, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s3.delete_object(
        Bucket=BUCKET,
        Key=published.location.file_key(published.manifest.version, "model.safetensors"),
    )
    loaded: list[str | None] = []

    def loader(settings: ServerSettings) -> Any:
        loaded.append(settings.model_id)
        raise AssertionError("a model that failed verification must never be loaded")

    runtime = Runtime(_settings(tmp_path), engine_loader=loader)
    with caplog.at_level(logging.ERROR), TestClient(create_app(runtime)) as client:
        assert not runtime.wait_loaded(60)
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["model_loaded"] is False
    assert body["detail"].startswith(
        f"{LOAD_FAILED_MESSAGE}: model file model.safetensors: missing: s3://{BUCKET}/"
    )
    assert loaded == []
    assert any(
        r.levelno == logging.ERROR and r.getMessage() == body["detail"] for r in caplog.records
    )


def test_server_loads_the_verified_copy_and_names_its_version(
    s3: S3Client, published: PublishResult, tmp_path: Path
) -> None:
    seen: list[str] = []

    def loader(settings: ServerSettings) -> Any:
        assert settings.model_id is not None
        seen.append(settings.model_id)
        return FakeEngine(settings.model_id)

    runtime = Runtime(_settings(tmp_path), engine_loader=loader)
    audio_key = "audio/s1/chunk-0000.wav"
    s3.put_object(Bucket=BUCKET, Key=audio_key, Body=_tone_wav())
    with TestClient(create_app(runtime)) as client:
        assert runtime.wait_loaded(60), runtime.load_error
        health = client.get("/health").json()
        answer = client.post(
            "/transcribe-s3",
            headers={"Authorization": f"Bearer {API_KEY}"},
            json={
                "s3_input_path": f"s3://{BUCKET}/{audio_key}",
                "s3_output_path": f"s3://{BUCKET}/transcripts/s1/chunk-0000.json",
            },
        )
    assert Path(seen[0]).name == "tiny-whisper" and Path(seen[0], "config.json").is_file()
    assert health["model"] == "tiny-whisper"
    assert health["model_version"] == published.manifest.version
    assert answer.status_code == 200, answer.text
    raw = s3.get_object(Bucket=BUCKET, Key="transcripts/s1/chunk-0000.json")["Body"].read()
    assert json.loads(raw)["model_version"] == published.manifest.version


def test_worker_with_a_damaged_model_exits_before_touching_the_queue(
    s3: S3Client,
    published: PublishResult,
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    key = published.location.file_key(published.manifest.version, "model.safetensors")
    damaged = bytearray((tiny_model / "model.safetensors").read_bytes())
    damaged[0] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(damaged))
    sqs = boto3.client("sqs")
    queue_url, _dlq = create_work_queues(sqs)
    message = QueueMessage(
        bucket=BUCKET,
        key="audio/s1/chunk-0000.wav",
        etag="abc",
        session_id="s1",
        chunk_index=0,
        enqueued_at=datetime.now(UTC),
        reason="forced",
    )
    sqs.send_message(QueueUrl=queue_url, MessageBody=message.to_body())
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    code = run_worker(
        {
            "queue_url": queue_url,
            "bucket_name": BUCKET,
            "model_id": MODEL_URI,
            "model_cache_dir": str(tmp_path / "cache"),
            "imds_enabled": False,
            "shutdown_on_exit": False,
            "idle_exit_s": 0,
        }
    )
    assert code == EXIT_MODEL_LOAD_FAILED != 0
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {
        "ApproximateNumberOfMessages": "1",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
    received = sqs.receive_message(QueueUrl=queue_url, MessageSystemAttributeNames=["All"])
    assert received["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "1"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    errors = [r for r in logged if r.get("level") == "ERROR"]
    assert any(
        r["message"].startswith(f"{LOAD_FAILED_MESSAGE}: model file model.safetensors: sha256")
        for r in errors
    ), errors


def test_worker_and_stitcher_carry_the_model_version() -> None:
    version = "v-0123456789abcdef"
    result = TranscriptionResult(
        text="hej", segments=[Segment(0.0, 0.5, "hej")], language="sv", duration_s=1.0, model="m"
    )

    def chunk(index: int, model_version: str | None) -> ChunkTranscript:
        message = QueueMessage(
            bucket=BUCKET,
            key=f"audio/s1/chunk-{index}.wav",
            etag="abc",
            session_id="s1",
            chunk_index=index,
            enqueued_at=datetime.now(UTC),
            reason="forced",
        )
        return build_transcript(
            bucket=message.bucket,
            key=message.key,
            session_id=message.session_id,
            index=message.chunk_index,
            etag="abc",
            result=result,
            processing_s=0.1,
            created_at=datetime.now(UTC),
            transcribed_by="worker",
            model_version=model_version,
        )

    first, second = chunk(0, version), chunk(1, None)
    assert json.loads(first.model_dump_json())["model_version"] == version
    assert "model_version" not in json.loads(second.model_dump_json())  # shape kept
    manifest = Manifest(session_id="s1", chunk_count=2)
    session = stitch(manifest, [first, second])
    doc = json.loads(session.model_dump_json())
    assert doc["model_versions"] == [version]
    assert doc["chunks"][0]["model_version"] == version
    assert "model_version" not in doc["chunks"][1]
    assert "model_versions" not in json.loads(
        stitch(manifest, [second, chunk(0, None)]).model_dump_json()
    )


def _tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        frames = (
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
            for i in range(int(seconds * rate))
        )
        wav.writeframes(b"".join(frames))
    return out.getvalue()
