"""The launcher's test rig: moto's SQS and EC2, one emulated account per module.

Capacity errors are injected at the botocore seam: a ``before-call`` hook on the (moto-backed)
EC2 client answers RunInstances with an EC2 error for chosen candidates, as AWS would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from launcher.launch import ROLE_TAG_KEY, LauncherDeps
from launcher.request import LaunchRequest
from launcher.settings import LauncherSettings
from transcript_contracts.settings import load_settings

REGION = "eu-north-1"
NOW = datetime(2024, 5, 1, 0, 0, 7, tzinfo=UTC)
SCHEDULED = LaunchRequest(
    "drain", "schedule", scheduled_time=datetime(2024, 5, 1, tzinfo=UTC), execution_id="e1"
)
MANUAL = LaunchRequest("drain", "manual")
# What EventBridge Scheduler sends for template.yaml's LaunchSchedule Input, context attributes
# filled in (values from the Scheduler user guide's examples).
SCHEDULER_PAYLOAD = {
    "action": "drain",
    "trigger": "schedule",
    "scheduled_time": "2022-03-22T18:59:43Z",
    "execution_id": "d32c5kddcf5bb8c3",
    "attempt": "1",
    "schedule_arn": "arn:aws:scheduler:eu-north-1:123456789012:schedule/default/nightly",
}


@dataclass
class Cloud:
    sqs: Any
    ec2: Any
    queue_url: str
    template_id: str
    subnets: list[str]
    zones: list[str]
    tag: str
    run_calls: list[dict[str, Any]] = field(default_factory=list)

    def settings(self, **overrides: Any) -> LauncherSettings:
        values: dict[str, Any] = {
            "queue_url": self.queue_url,
            "launch_template_id": self.template_id,
            "launch_subnet_ids": self.subnets[:2],
            "batch_instance_tag": self.tag,
        }
        values.update(overrides)
        return load_settings(LauncherSettings, _env_file=None, **values)

    def deps(self, **overrides: Any) -> LauncherDeps:
        return LauncherDeps(self.settings(**overrides), self.sqs, self.ec2, clock=lambda: NOW)

    def enqueue(self, count: int) -> None:
        for i in range(count):
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"i": i}))

    def batch_instances(self) -> list[dict[str, Any]]:
        pages = self.ec2.describe_instances(
            Filters=[
                {"Name": f"tag:{ROLE_TAG_KEY}", "Values": [self.tag]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )
        return [i for r in pages["Reservations"] for i in r["Instances"]]

    def fail_run_instances(self, decide: Callable[[dict[str, Any]], str | None]) -> None:
        """Answer RunInstances with EC2 error ``decide(params)`` (None: let moto launch);
        ``params`` are the call's arguments as the launcher passed them."""

        def hook(**_: Any) -> Any:
            code = decide(self.run_calls[-1])
            if code is None:
                return None
            return Http(400), {"Error": {"Code": code, "Message": f"injected {code}"}}

        self.ec2.meta.events.register("before-call.ec2.RunInstances", hook)


@dataclass
class Http:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


def market(params: dict[str, Any]) -> str:
    return "spot" if "InstanceMarketOptions" in params else "on-demand"


@dataclass(frozen=True)
class _Account:
    template_id: str
    subnets: list[str]
    zones: list[str]


@pytest.fixture(scope="module")
def account() -> Iterator[_Account]:
    """One emulated account per module (moto's EC2 start-up costs seconds); each test gets its
    own queue, clients (so its hooks) and batch tag, so tests never see each other's work."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.setenv(name, "testing")
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            ec2 = boto3.client("ec2", region_name=REGION)
            subnets = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])
            template = ec2.create_launch_template(
                LaunchTemplateName="batch-worker",
                LaunchTemplateData={
                    "ImageId": "ami-12c6146b",  # one of moto's built-in AMIs
                    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
                    "InstanceInitiatedShutdownBehavior": "terminate",
                    "UserData": "I2Nsb3VkLWNvbmZpZw==",
                },
            )["LaunchTemplate"]["LaunchTemplateId"]
            yield _Account(
                template,
                [s["SubnetId"] for s in subnets],
                [s["AvailabilityZone"] for s in subnets],
            )


@pytest.fixture
def cloud(account: _Account, request: pytest.FixtureRequest) -> Cloud:
    unique = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    sqs = boto3.client("sqs", region_name=REGION)
    ec2 = boto3.client("ec2", region_name=REGION)
    queue_url = sqs.create_queue(QueueName=f"work-{unique}")["QueueUrl"]
    c = Cloud(
        sqs,
        ec2,
        queue_url,
        account.template_id,
        account.subnets,
        account.zones,
        tag=f"batch-{unique}",
    )

    def record(params: dict[str, Any], **_: Any) -> None:
        c.run_calls.append(params)

    ec2.meta.events.register("before-parameter-build.ec2.RunInstances", record)
    return c
