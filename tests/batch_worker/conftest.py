from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.batch_worker.support import BUCKET, MAX_RECEIVE_COUNT, REGION, Aws, FakeImds
from tests.support.queues import create_work_queues
from tests.transcript_store.moto_atomic import atomic_conditional_writes


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """A bucket, a work queue and its DLQ (maxReceiveCount 3), emulated by moto."""
    with mock_aws(), atomic_conditional_writes(monkeypatch):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url, dlq_url = create_work_queues(
            sqs, max_receive_count=MAX_RECEIVE_COUNT, visibility_s=30
        )
        yield Aws(s3=s3, sqs=sqs, queue_url=queue_url, dlq_url=dlq_url)


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    server = FakeImds()
    yield server
    server.close()
