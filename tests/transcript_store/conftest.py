from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from mypy_boto3_s3 import S3Client

from tests.transcript_store.factories import BUCKET
from tests.transcript_store.moto_atomic import atomic_conditional_writes
from transcript_contracts.keys import KeyLayout
from transcript_store import TranscriptStore


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-north-1",
        "AWS_REGION": "eu-north-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    with mock_aws(), atomic_conditional_writes(monkeypatch):
        client = boto3.client("s3", region_name="eu-north-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
        )
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def store(s3: S3Client, sleeps: list[float]) -> TranscriptStore:
    return TranscriptStore(s3, sleep=sleeps.append)


@pytest.fixture
def layout() -> KeyLayout:
    return KeyLayout()
