"""Fixtures of the model registry tests: moto S3 and small stand-in model directories.

The stand-ins have the file names of a transformers Whisper checkpoint but not real weights:
the registry moves and verifies bytes and never loads them. Tests that transcribe use the real
base model (tests/conftest.py ``model_dir``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "model-registry-test"
REGION = "eu-north-1"
MODEL_URI = f"s3://{BUCKET}/models/tiny-whisper/"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3(aws_env: None) -> Iterator[S3Client]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
        )
        # Versioning shows every write: a publish that "changes nothing" adds no version.
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def write_tiny_model(directory: Path, *, weights: bytes = b"\x01" * 4096) -> Path:
    """The files `model publish` requires, plus a subdirectory (a quantized form)."""
    directory.mkdir(parents=True, exist_ok=True)

    def dump(name: str, content: Any) -> None:
        (directory / name).write_text(json.dumps(content), encoding="utf-8")

    dump("config.json", {"model_type": "whisper", "d_model": 8})
    dump("preprocessor_config.json", {"feature_size": 80})
    dump("tokenizer.json", {"model": {"type": "BPE"}})
    dump(
        "generation_config.json",
        {"is_multilingual": True, "lang_to_id": {"<|en|>": 50259, "<|sv|>": 50273}},
    )
    (directory / "model.safetensors").write_bytes(weights)
    (directory / "ct2").mkdir(exist_ok=True)
    (directory / "ct2" / "model.bin").write_bytes(b"\x02" * 2048)
    # What a hub download leaves behind: never published.
    (directory / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)
    (directory / ".cache" / "huggingface" / "download.lock").write_text("x")
    return directory


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "tiny-whisper")


def object_versions(s3: S3Client) -> list[tuple[str, str]]:
    listed = s3.list_object_versions(Bucket=BUCKET)
    return sorted((v["Key"], v["VersionId"]) for v in listed.get("Versions", []))
