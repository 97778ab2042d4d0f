"""The batch worker's cloud-init user data (template.yaml WorkerLaunchTemplate): it cannot boot
here, so it is checked as text: valid cloud-config, the service and its hard deadline, the
start script (shellcheck), and the settings it gives the worker."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

from batch_worker.settings import WorkerSettings
from tests.infra.sam import ROOT, source

SAMPLE = {
    "BucketName": "my-bucket",
    "AudioPrefix": "audio/",
    "TranscriptPrefix": "transcripts/",
    "WorkQueue": "https://sqs.eu-north-1.amazonaws.com/123456789012/work",
    "ModelIdLine": "MODEL_ID=KBLab/kb-whisper-small",
    "Language": "sv",
    "EventBusName": "default",
    "WebhookUrl": "https://hooks.example.com/transcripts",
    "WebhookSecretParameterName": "/transcription/webhook-secret",
    "WorkerIdleExitSeconds": "600",
    "WorkerMaxRuntimeSeconds": "21600",
    "AWS::Region": "eu-north-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "WorkerImageRepository": "smart-transcription-router",
    "WorkerImageTag": "latest",
    "WorkerLogGroup": "worker-logs",
}


def rendered() -> str:
    """The user data as an instance would get it, with sample values for ${...}."""
    user_data = source()["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"][
        "UserData"
    ]
    text, variables = user_data["Fn::Base64"]["Fn::Sub"]
    assert set(variables) == {"ModelIdLine"}
    return re.sub(r"\$\{([^}!]+)\}", lambda m: SAMPLE[m.group(1)], text)


@pytest.fixture(scope="module")
def cloud_config() -> dict[str, Any]:
    text = rendered()
    assert text.startswith("#cloud-config\n")
    parsed: dict[str, Any] = yaml_parse(text)
    return parsed


def written(cloud_config: dict[str, Any], path: str) -> str:
    (entry,) = (f for f in cloud_config["write_files"] if f["path"] == path)
    return str(entry["content"])


def test_every_substitution_is_known() -> None:
    rendered()  # a KeyError names a ${...} the template would not resolve here


def test_worker_env_holds_only_worker_settings(cloud_config: dict[str, Any]) -> None:
    env = written(cloud_config, "/etc/smart-router/worker.env")
    names = {line.split("=", 1)[0] for line in env.splitlines() if line and line[0] != "#"}
    fields = {name.upper() for name in WorkerSettings.model_fields}
    assert names - {"AWS_REGION", "AWS_DEFAULT_REGION"} <= fields
    assert {"BUCKET_NAME", "QUEUE_URL", "MAX_RUNTIME_S", "IMDS_ENABLED"} <= names
    assert "IMDS_ENABLED=true" in env and "DEVICE=cuda" in env
    entry = next(f for f in cloud_config["write_files"] if f["path"].endswith("worker.env"))
    assert entry["permissions"] == "0600"


def test_service_has_the_hard_deadline_and_powers_off(cloud_config: dict[str, Any]) -> None:
    unit = written(cloud_config, "/etc/systemd/system/smart-router-worker.service")
    assert "RuntimeMaxSec=21600" in unit
    assert "ExecStopPost=/usr/bin/systemctl --no-block poweroff" in unit
    assert "Restart=no" in unit
    assert "ExecStart=/usr/local/sbin/smart-router-worker" in unit
    commands = [" ".join(c) if isinstance(c, list) else c for c in cloud_config["runcmd"]]
    assert any("shutdown -P" in c and "21600 + 900" in c for c in commands)
    assert "systemctl enable --now --no-block smart-router-worker.service" in commands


def test_service_unit_passes_systemd_analyze(cloud_config: dict[str, Any], tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = written(cloud_config, "/etc/systemd/system/smart-router-worker.service")
    script = tmp_path / "smart-router-worker"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    path = tmp_path / "smart-router-worker.service"
    path.write_text(unit.replace("/usr/local/sbin/smart-router-worker", str(script)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Only complaints about this unit count (the container has no docker.service).
    ours = [
        line
        for line in result.stderr.splitlines()
        if "smart-router-worker.service" in line and "docker.service" not in line
    ]
    assert not ours, result.stderr


def test_start_script_runs_the_worker_on_the_host_network(cloud_config: dict[str, Any]) -> None:
    script = written(cloud_config, "/usr/local/sbin/smart-router-worker")
    assert script.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in script
    assert "--network host" in script  # IMDS hop limit 1
    assert "--gpus all" in script
    # The image's ENTRYPOINT is `smart-router` (Dockerfile): the command is `worker`.
    assert script.rstrip().endswith('"$IMAGE_URI" worker')
    dockerfile = ROOT / "Dockerfile"
    if dockerfile.exists():
        assert 'ENTRYPOINT ["smart-router"]' in dockerfile.read_text()
    assert "X-aws-ec2-metadata-token" in script  # IMDSv2 only


def test_start_script_is_shellcheck_clean(cloud_config: dict[str, Any], tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(shellcheck).exists():
        pytest.skip("shellcheck is not installed")
    script = tmp_path / "smart-router-worker"
    script.write_text(written(cloud_config, "/usr/local/sbin/smart-router-worker"))
    result = subprocess.run(
        [shellcheck, "--shell=bash", str(script)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
