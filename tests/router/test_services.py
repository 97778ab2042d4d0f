from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from mypy_boto3_ec2 import EC2Client
from mypy_boto3_ssm import SSMClient
from pydantic import SecretStr

from router.errors import ApiKeyError, QueueSendError, ServerLookupError
from router.services import ServerKeySource, ServerLocator, WorkQueueSender
from tests.router.conftest import REGION, SESSION
from transcript_contracts.models import QueueMessage


@pytest.fixture
def ec2() -> Iterator[EC2Client]:
    with mock_aws():
        yield SESSION.client("ec2", region_name=REGION)


def start_instance(ec2: EC2Client, name: str) -> tuple[str, str]:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    )["Instances"][0]
    return instance["InstanceId"], instance["PrivateIpAddress"]


def test_fixed_url_needs_no_lookup() -> None:
    def no_ec2() -> EC2Client:
        raise AssertionError("EC2 must not be called")

    locator = ServerLocator(url="http://10.0.0.5:8000/", instance_tag="x", port=1, ec2=no_ec2)
    assert locator.base_url() == "http://10.0.0.5:8000"


def test_tagged_instance_lookup_is_cached(ec2: EC2Client) -> None:
    start_instance(ec2, "other-server")
    _, ip = start_instance(ec2, "transcriber")
    now = [0.0]
    lookups: list[str] = []
    ec2.meta.events.register(
        "before-call.ec2.DescribeInstances", lambda **kw: lookups.append("describe")
    )
    locator = ServerLocator(
        url=None,
        instance_tag="transcriber",
        port=8000,
        ec2=lambda: ec2,
        monotonic=lambda: now[0],
        ttl_s=60,
    )
    assert locator.base_url() == f"http://{ip}:8000"
    now[0] = 59.0
    assert locator.base_url() == f"http://{ip}:8000"
    assert lookups == ["describe"]
    now[0] = 61.0
    locator.base_url()
    assert lookups == ["describe", "describe"]


def test_no_running_instance_means_none(ec2: EC2Client) -> None:
    instance_id, _ = start_instance(ec2, "transcriber")
    ec2.stop_instances(InstanceIds=[instance_id])
    locator = ServerLocator(url=None, instance_tag="transcriber", port=8000, ec2=lambda: ec2)
    assert locator.base_url() is None


def test_newest_instance_wins() -> None:
    client = boto3.client("ec2", region_name=REGION)
    old = datetime(2026, 1, 1, tzinfo=UTC)
    new = datetime(2026, 6, 1, tzinfo=UTC)
    with Stubber(client) as stub:
        stub.add_response(
            "describe_instances",
            {
                "Reservations": [
                    {"Instances": [{"PrivateIpAddress": "10.0.0.1", "LaunchTime": old}]},
                    {"Instances": [{"PrivateIpAddress": "10.0.0.2", "LaunchTime": new}]},
                    {"Instances": [{"LaunchTime": new}]},  # no private IP yet
                ]
            },
        )
        locator = ServerLocator(url=None, instance_tag="t", port=9, ec2=lambda: client)
        assert locator.base_url() == "http://10.0.0.2:9"


def test_lookup_failure_is_typed() -> None:
    client = boto3.client("ec2", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("describe_instances", "UnauthorizedOperation", http_status_code=403)
        locator = ServerLocator(url=None, instance_tag="t", port=9, ec2=lambda: client)
        with pytest.raises(ServerLookupError, match="UnauthorizedOperation"):
            locator.base_url()


@pytest.fixture
def ssm() -> Iterator[SSMClient]:
    with mock_aws():
        yield SESSION.client("ssm", region_name=REGION)


def test_local_key_is_used_without_ssm() -> None:
    def no_ssm() -> SSMClient:
        raise AssertionError("SSM must not be called")

    source = ServerKeySource(key=SecretStr("local-key"), parameter="/p", ssm=no_ssm)
    assert source.get() == "local-key"
    assert "local-key" not in repr(source)


def test_ssm_key_is_fetched_once(ssm: SSMClient) -> None:
    ssm.put_parameter(Name="/k", Value="the-value", Type="SecureString")
    made: list[int] = []

    def factory() -> SSMClient:
        made.append(1)
        return ssm

    source = ServerKeySource(key=None, parameter="/k", ssm=factory)
    assert [source.get() for _ in range(3)] == ["the-value"] * 3
    assert made == [1]
    assert "the-value" not in repr(source)


def test_missing_parameter_is_an_api_key_error(ssm: SSMClient) -> None:
    source = ServerKeySource(key=None, parameter="/missing", ssm=lambda: ssm)
    with pytest.raises(ApiKeyError, match="'/missing'"):
        source.get()


def test_no_key_source_at_all() -> None:
    source = ServerKeySource(key=None, parameter=None, ssm=lambda: boto3.client("ssm"))
    with pytest.raises(ApiKeyError, match="neither API_KEY nor API_KEY_PARAMETER"):
        source.get()


def test_queue_send_failure_is_typed() -> None:
    client = boto3.client("sqs", region_name=REGION)
    message = QueueMessage(
        bucket="bkt",
        key="audio/s/chunk-0.mp3",
        etag="e",
        session_id="s",
        chunk_index=0,
        enqueued_at=datetime(2026, 1, 1, tzinfo=UTC),
        reason="forced",
    )
    with Stubber(client) as stub:
        stub.add_client_error("send_message", "AWS.SimpleQueueService.NonExistentQueue", "x")
        queue = WorkQueueSender(sqs=client, queue_url="https://sqs.eu-north-1.amazonaws.com/1/q")
        with pytest.raises(QueueSendError, match=re.escape("s3://bkt/audio/s/chunk-0.mp3")):
            queue.send(message)
        expected: dict[str, Any] = {
            "QueueUrl": "https://sqs.eu-north-1.amazonaws.com/1/q",
            "MessageBody": message.to_body(),
        }
        stub.add_response("send_message", {"MessageId": "m-1"}, expected)
        assert queue.send(message) == "m-1"
