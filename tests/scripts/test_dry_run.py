"""Steps that need Docker, SAM, a GPU instance or a live server, in --dry-run: the calls they
would make are printed (no credentials, no endpoint, nothing called); and the prerequisite
failures, each one sentence with a non-zero exit."""

from __future__ import annotations

import itertools
import json
import shlex
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from server.settings import ServerSettings
from tests.scripts.conftest import Steps, base_env
from tests.scripts.server_wiring import SDK_NAMES, server_env


@pytest.fixture
def offline(tmp_path: Path) -> Steps:
    """A .env with earlier steps' outputs filled in, and no AWS credentials at all."""
    runner = Steps(tmp_path / ".env", base_env(None))
    runner.ok(
        "000",
        "--non-interactive",
        "--set",
        "BUCKET_NAME=dry-bucket",
        "--set",
        "ECR_REPOSITORY_URI=123456789012.dkr.ecr.eu-north-1.amazonaws.com/smart-transcription-server",
        "--set",
        "SERVER_URL=http://10.0.0.5:8000",
        "--set",
        "ROUTER_FUNCTION_ARN=arn:aws:lambda:eu-north-1:123456789012:function:router",
        "--set",
        "QUEUE_URL=https://sqs.eu-north-1.amazonaws.com/123456789012/q",
        "--set",
        "SERVER_INSTANCE_ID=i-0123456789abcdef0",
        "--set",
        "WEBHOOK_SECRET_PARAMETER=/transcription/webhook-secret",
    )
    return runner


def dry(steps: Steps, step: str, *args: str) -> list[str]:
    result = steps.run(step, "--dry-run", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Next: scripts/step-" in result.stdout.splitlines()[-1]
    return [line for line in result.stdout.splitlines() if line.startswith("DRY-RUN: ")]


def test_340_prints_sam_build_and_deploy_with_parameters(offline: Steps) -> None:
    calls = dry(offline, "340")
    build = next(c for c in calls if c.startswith("DRY-RUN: sam build"))
    assert "template.yaml" in build
    deploy = next(c for c in calls if c.startswith("DRY-RUN: sam deploy"))
    for part in (
        "--stack-name smart-transcription-router",
        "--region eu-north-1",
        "--no-fail-on-empty-changeset",
        "BucketName=dry-bucket",
        "AudioPrefix=audio/",
        "ApiKeyParameterName=/transcription/api-key",
        "WorkerImageRepository=smart-transcription-server",
        "InstanceTypes=g4dn.xlarge",
        "VpcCidr=10.42.0.0/16",
        "WebhookSecretParameterName=/transcription/webhook-secret",
        "MonthlyBudgetUsd=100",
        "QueueAgeAlarmSeconds=93600",
        "LogRetentionDays=30",
    ):
        assert part in deploy
    # The router's SERVER_URL is the stack's own private address: nothing in .env reaches it.
    assert "ServerUrl=" not in deploy and "ServerIngressCidr" not in deploy
    assert not offline.env_file.with_name("template.yaml").exists()


def test_020_without_a_stack_deploys_it(offline: Steps) -> None:
    calls = dry(offline, "020")
    assert any("cloudformation describe-stacks" in c for c in calls)
    assert any(c.startswith("DRY-RUN: sam deploy") for c in calls)


def test_312_313_print_docker_build_login_and_push(offline: Steps) -> None:
    uri = "123456789012.dkr.ecr.eu-north-1.amazonaws.com/smart-transcription-server"
    build = dry(offline, "312")
    assert build[0].startswith("DRY-RUN: docker build")
    assert f"--tag {uri}:latest" in build[0] and "BAKE_MODEL=1" in build[0]
    assert "BAKE_MODEL=0" in dry(offline, "312", "--no-model")[0]
    push = dry(offline, "313")
    assert any("ecr get-login-password" in c for c in push)
    assert any("docker login --username AWS --password-stdin" in c for c in push)
    assert f"DRY-RUN: docker push {uri}:latest" in push


def test_320_prints_a_locked_down_run_instances(offline: Steps) -> None:
    calls = dry(offline, "320")
    describe = next(c for c in calls if "ec2 describe-instances" in c)
    assert "tag:SmartRouterRole,Values=smart-transcription-router-server" in describe
    run = next(c for c in calls if "ec2 run-instances" in c)
    assert "HttpTokens=required" in run and "HttpPutResponseHopLimit=1" in run
    assert "--instance-type g4dn.xlarge" in run and "Encrypted=true" in run
    # On the stack's private interface: no subnet, group or public-address flag to get wrong.
    words = shlex.split(run.removeprefix("DRY-RUN: "))
    flags = dict(itertools.pairwise(words))
    assert flags["--network-interfaces"] == (
        "NetworkInterfaceId=<ServerNetworkInterfaceId>,DeviceIndex=0"
    )
    assert flags["--iam-instance-profile"] == "Name=<ServerInstanceProfileName>"
    for flag in (
        "--associate-public-ip-address",
        "--subnet-id",
        "--security-group-ids",
        "--key-name",
    ):
        assert flag not in words
    assert (
        "{Key=SmartRouterRole,Value=smart-transcription-router-server}"
        in flags["--tag-specifications"]
    )
    assert any("ec2 wait instance-running" in c for c in calls)


def test_320_never_asks_for_a_public_address() -> None:
    from tests.scripts.conftest import SCRIPTS

    text = (SCRIPTS / "step-320-fast-api-launch-gpu-instances.sh").read_text()
    assert "PublicIpAddress" not in text and "associate-public-ip-address" not in text
    assert "awslogs-group" in text  # the server's logs leave the instance


def test_320_gives_the_server_its_queue_and_notification_settings() -> None:
    # The user data's env file (the rehearsal reads the launched instance's): real server
    # settings only, among them the queue its drainer takes work from (issue 15) and the
    # notification settings the router and worker get from step-340.
    from tests.scripts.conftest import SCRIPTS

    text = (SCRIPTS / "step-320-fast-api-launch-gpu-instances.sh").read_text()
    env = server_env(text)
    assert env["QUEUE_URL"] == "$queue_url"  # the stack's output QueueUrl
    for name in ("EVENT_BUS_NAME", "WEBHOOK_URL", "WEBHOOK_SECRET_PARAMETER", "LANGUAGE"):
        assert env[name] == f"${{{name}:-}}", name  # as .env feeds the stack's parameters
    assert env["API_KEY_PARAMETER"] == "$API_KEY_PARAMETER" and "API_KEY" not in env
    assert set(env) - SDK_NAMES <= {name.upper() for name in ServerSettings.model_fields}
    assert 'queue_url="$(stack_output QueueUrl)"' in text


def test_999_prints_the_deletions_and_deletes_nothing(offline: Steps) -> None:
    calls = dry(offline, "999")
    joined = "\n".join(calls)
    for call in (
        "cloudformation delete-stack --stack-name smart-transcription-router",
        "ecr delete-repository --repository-name smart-transcription-server --force",
        "ssm delete-parameter --name /transcription/api-key",
        "ssm delete-parameter --name /transcription/webhook-secret",
    ):
        assert call in joined
    terminated = [shlex.split(c)[-1] for c in calls if "ec2 terminate-instances" in c]
    assert terminated == [
        "<instances tagged SmartRouterRole=smart-transcription-router-batch-worker>",
        "<instances tagged SmartRouterRole=smart-transcription-router-server>",
    ]
    assert "s3 rb" not in joined and "delete-bucket" not in joined
    assert offline.values()["QUEUE_URL"]  # a dry run leaves .env alone


def test_other_steps_print_their_calls(offline: Steps) -> None:
    assert any("ssm put-parameter --cli-input-json file://" in c for c in dry(offline, "010"))
    assert any("ecr create-repository" in c for c in dry(offline, "301"))
    assert any("s3api put-object --bucket dry-bucket" in c for c in dry(offline, "342"))
    assert any("curl" in c and "/health" in c for c in dry(offline, "326", "--direct"))
    calls = dry(offline, "330", "--direct")
    assert any("curl" in c and "/transcribe" in c for c in calls)
    assert not any("Bearer" in c for c in calls)


def test_326_330_run_on_the_private_server_with_run_command(offline: Steps) -> None:
    """The default path: SSM Run Command on SERVER_INSTANCE_ID (the server admits only the
    router); the command itself is in a private file, never on the command line."""
    for step in ("326", "330"):
        calls = dry(offline, step)
        (send,) = (c for c in calls if "ssm send-command" in c)
        assert "--instance-ids i-0123456789abcdef0" in send
        assert "--document-name AWS-RunShellScript" in send and "file://" in send
        assert not any("curl" in c for c in calls)
        assert not any("Bearer" in c or "get-parameter" in c for c in calls)


# ------------------------------------------------------------------- prerequisites


def test_missing_env_file_is_one_sentence(tmp_path: Path) -> None:
    steps = Steps(tmp_path / "missing.env", base_env(None))
    for step in ("001", "020", "340", "999"):
        result = steps.run(step)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"error: {tmp_path / 'missing.env'} not found: "
            "run scripts/step-000-setup-configuration.sh first."
        )


def test_missing_credentials_is_one_sentence(offline: Steps) -> None:
    result = offline.run("021")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: AWS credentials are missing or invalid")


def test_missing_region_and_missing_docker(offline: Steps) -> None:
    result = offline.run("301", extra={"AWS_REGION": ""})
    assert result.returncode == 1 and "no AWS region is set" in result.stderr
    result = offline.run("312", extra={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexist"})
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "docker" in result.stderr.lower()


def test_earlier_step_outputs_are_required(tmp_path: Path) -> None:
    steps = Steps(tmp_path / ".env", base_env(None))
    steps.ok("000", "--non-interactive", "--set", "BUCKET_NAME=dry-bucket")
    for step, message in (
        ("313", "ECR_REPOSITORY_URI is not set in .env: run scripts/step-301-"),
        ("326", "SERVER_URL is not set in .env: run scripts/step-320-"),
        ("342", "ROUTER_FUNCTION_ARN is not set in .env: run scripts/step-340-"),
    ):
        result = steps.run(step, "--dry-run")
        assert result.returncode == 1
        assert result.stderr.strip().startswith(f"error: {message}")


def test_unknown_flags_and_help(offline: Steps) -> None:
    result = offline.run("021", "--bogus")
    assert result.returncode == 1 and "unknown argument '--bogus'" in result.stderr
    help_text = offline.ok("020", "--help")
    assert "SAM stack owns them" in help_text


# ------------------------------------------------------------------- 326/330 against a stub server


class _Stub(BaseHTTPRequestHandler):
    gpu = True

    def log_message(self, *args: object) -> None:
        return

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        body = {"status": "healthy", "model_loaded": True, "gpu_available": self.gpu,
                "device": "cuda" if self.gpu else "cpu", "model": "whisper-base"}  # fmt: skip
        self._json(200, body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        if self.headers.get("Authorization") != "Bearer stub-key":
            self._json(401, {"error": {"code": "unauthorized", "message": "bearer key"}})
            return
        self._json(200, {"transcription": "hej", "segments": []})


@pytest.fixture
def stub_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        _Stub.gpu = True


def test_326_and_330_against_a_stub_server(offline: Steps, stub_url: str) -> None:
    extra = {"SERVER_URL": stub_url, "API_KEY": "stub-key"}
    out = offline.ok("326", "--direct", "--wait", "5", extra=extra)
    assert "gpu: true" in out and "model: whisper-base" in out
    out = offline.ok("330", "--direct", extra=extra)
    assert "without a key: 401" in out and "transcription: hej" in out
    wrong = offline.run("330", "--direct", extra={**extra, "API_KEY": "wrong"})
    assert wrong.returncode == 1 and "answered 401" in wrong.stderr
    _Stub.gpu = False
    cpu = offline.run("326", "--direct", "--wait", "5", extra=extra)
    assert cpu.returncode == 1 and "has no GPU" in cpu.stderr
    offline.ok("326", "--direct", "--wait", "5", "--allow-cpu", extra=extra)
    refused = offline.run("330", "--file", "/etc/hostname")
    assert refused.returncode == 1 and "--file needs --direct" in refused.stderr
