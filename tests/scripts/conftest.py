"""Fixtures for the numbered setup scripts: one moto server per session, a runner for the steps.

The steps run as real subprocesses with the AWS CLI against moto's server through
``AWS_ENDPOINT_URL`` (passed on as ``--endpoint-url``); against moto the CLI is started by
a fork server (aws_forkserver.py: the real CLI, its start-up shared). Assertions read moto back
with boto3.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.scripts.aws_forkserver import write_client

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
BIN = Path(sys.executable).parent
REGION = "eu-north-1"


def tool(name: str) -> str | None:
    """A tool from the project's virtual environment first, else from PATH."""
    local = BIN / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("moto_fixups.py")),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _clean_env() -> dict[str, str]:
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }


@pytest.fixture(scope="session")
def fast_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The path of an ``aws`` that forwards to a fork server (aws_forkserver.py)."""
    directory = tmp_path_factory.mktemp("aws")
    socket_path = str(directory / "cli.sock")
    env = {
        **_clean_env(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("aws_forkserver.py")), socket_path],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not os.path.exists(socket_path):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("the AWS CLI fork server did not start")
        time.sleep(0.05)
    try:
        yield str(write_client(directory, socket_path))
    finally:
        process.terminate()
        process.wait(timeout=10)


def base_env(endpoint: str | None, aws_cli: str | None = None) -> dict[str, str]:
    """A clean environment: no settings of the caller's shell, fake credentials for moto;
    ``aws_cli`` (the fork server's client) becomes the steps' AWS_CLI."""
    env = _clean_env()
    if endpoint is not None:
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_ENDPOINT_URL=endpoint,
        )
    if aws_cli is not None:
        env["AWS_CLI"] = aws_cli
    return env


@dataclass
class Steps:
    """Runs scripts/step-*.sh with one .env file and environment."""

    env_file: Path
    env: dict[str, str]

    def run(
        self, step: str, *args: str, stdin: str = "", extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        script = next(SCRIPTS.glob(f"step-{step}-*.sh"))
        env = {**self.env, "ENV_FILE": str(self.env_file), **(extra or {})}
        return subprocess.run(
            ["bash", str(script), *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, step: str, *args: str, extra: dict[str, str] | None = None) -> str:
        result = self.run(step, *args, extra=extra)
        assert result.returncode == 0, f"step-{step} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def values(self) -> dict[str, str]:
        lines = self.env_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture
def names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "bucket": f"bucket-{suffix}",
        "stack": f"stack-{suffix}",
        "repo": f"repo-{suffix}",
        "key": f"/test/{suffix}/api-key",
        "tag": f"server-{suffix}",
    }


@pytest.fixture
def steps(tmp_path: Path, moto_endpoint: str, fast_aws: str, names: dict[str, str]) -> Steps:
    """A configured .env (step-000, non-interactive) for unique names in the shared moto."""
    runner = Steps(tmp_path / ".env", base_env(moto_endpoint, fast_aws))
    runner.ok(
        "000",
        "--non-interactive",
        "--set",
        f"BUCKET_NAME={names['bucket']}",
        "--set",
        f"STACK_NAME={names['stack']}",
        "--set",
        f"ECR_REPOSITORY={names['repo']}",
        "--set",
        f"API_KEY_PARAMETER={names['key']}",
        "--set",
        f"SERVER_INSTANCE_TAG={names['tag']}",
        "--set",
        f"AWS_REGION={REGION}",
    )
    return runner


def client(endpoint: str, service: str) -> Any:
    factory: Any = boto3.client  # untyped on purpose: the service name is a plain str here
    return factory(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def fake_stack_template(bucket: str, policy_action: str = "sqs:SendMessage") -> str:
    """The plain-CloudFormation part of template.yaml that the steps read: the queues (same
    logical ids and outputs), an S3 rule and a role. moto cannot run the SAM transform, so
    this stands in for a stack deployed by step-340."""
    template: dict[str, Any] = {
        "Resources": {
            "WorkDeadLetterQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
            },
            "WorkQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "MessageRetentionPeriod": 345600,
                    "VisibilityTimeout": 900,
                    "SqsManagedSseEnabled": True,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["WorkDeadLetterQueue", "Arn"]},
                        "maxReceiveCount": 3,
                    },
                },
            },
            "EventsQueue": {"Type": "AWS::SQS::Queue"},
            "AudioRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": {
                        "source": ["aws.s3"],
                        "detail-type": ["Object Created"],
                        "detail": {"bucket": {"name": [bucket]}},
                    },
                    "State": "ENABLED",
                    "Targets": [{"Arn": {"Fn::GetAtt": ["EventsQueue", "Arn"]}, "Id": "router"}],
                },
            },
            "RouterRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": "queue",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": policy_action,
                                        "Resource": {"Fn::GetAtt": ["WorkQueue", "Arn"]},
                                    }
                                ],
                            },
                        }
                    ],
                },
            },
        },
        "Outputs": {
            "QueueUrl": {"Value": {"Ref": "WorkQueue"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "WorkDeadLetterQueue"}},
            "RouterFunctionArn": {"Value": "arn:aws:lambda:eu-north-1:123456789012:function:r"},
            "EventsQueueUrl": {"Value": {"Ref": "EventsQueue"}},
        },
    }
    return json.dumps(template)


@pytest.fixture
def stack(moto_endpoint: str, names: dict[str, str]) -> dict[str, str]:
    """The bucket and a deployed stand-in stack; returns its outputs."""
    client(moto_endpoint, "s3").create_bucket(
        Bucket=names["bucket"], CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    cloudformation = client(moto_endpoint, "cloudformation")
    cloudformation.create_stack(
        StackName=names["stack"], TemplateBody=fake_stack_template(names["bucket"])
    )
    outputs = cloudformation.describe_stacks(StackName=names["stack"])["Stacks"][0]["Outputs"]
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}
