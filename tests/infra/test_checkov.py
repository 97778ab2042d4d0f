"""checkov on the template translated to CloudFormation (P19).

checkov is not a dev dependency: in this venv it would downgrade pydantic, packaging, urllib3
and networkx. It lives in its own virtual environment (docs/infrastructure.md):

    python3 -m venv .cache/tools/checkov && .cache/tools/checkov/bin/pip install checkov

and is found there, through ``CHECKOV`` or on PATH; without it this test is skipped. It runs
offline (``--skip-download``) in about ten seconds.

Every check must pass or be skipped in the template's ``Metadata.checkov.skip`` with a comment
(none of them IAM); conditional resources are switched on so that they are scanned too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.sam import ROOT, translate

# checkov's IAM policy checks; none may fail or be skipped.
IAM_CHECKS = {
    "CKV_AWS_60",
    "CKV_AWS_61",
    "CKV_AWS_62",
    "CKV_AWS_63",
    "CKV_AWS_107",
    "CKV_AWS_108",
    "CKV_AWS_109",
    "CKV_AWS_110",
    "CKV_AWS_111",
}

# The only skips, each with its reason in template.yaml.
EXPECTED_SKIPS = {
    "CKV_AWS_18",  # bucket access logging: needs a log bucket the operator chooses
    "CKV_AWS_26",  # SNS alarm topic: CloudWatch and Budgets cannot use the AWS-managed key
    "CKV_AWS_27",  # SQS: SSE-SQS is on; checkov recognises only KMS
    "CKV_AWS_116",  # Lambda DLQ: EventInvokeConfig on-failure destinations instead
    "CKV_AWS_117",  # Lambda in VPC: the launcher calls only AWS APIs
    "CKV_AWS_119",  # DynamoDB CMK: AWS-managed encryption on; records hold keys only
    "CKV_AWS_158",  # log group CMK: CloudWatch Logs encrypts by default
    "CKV_AWS_173",  # Lambda env encryption: no secrets in the environment
    "CKV2_AWS_11",  # VPC flow logs: optional (cost); security groups admit only the router
    "CKV2_AWS_12",  # the VPC's default security group: unused, every resource has its own
}


CHECKOV_ARGS = ("--framework", "cloudformation", "--compact", "--skip-download", "-o", "json")


def checkov_binary() -> str | None:
    for candidate in (
        os.environ.get("CHECKOV"),
        str(ROOT / ".cache" / "tools" / "checkov" / "bin" / "checkov"),
        shutil.which("checkov"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    binary = checkov_binary()
    if binary is None:
        pytest.skip("checkov is not installed (see this module's docstring)")
    template = translate(
        CreateBucket="true",
        AlarmEmail="ops@example.com",
        WebhookSecretParameterName="/transcription/webhook-secret",
    )
    path = tmp_path_factory.mktemp("checkov") / "template.json"
    path.write_text(json.dumps(template, indent=1))
    result = subprocess.run(
        [binary, "-f", str(path), *CHECKOV_ARGS],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.stdout, result.stderr
    parsed = json.loads(result.stdout)
    outcome: dict[str, Any] = parsed[0] if isinstance(parsed, list) else parsed
    return outcome


def ids(report: dict[str, Any], kind: str) -> set[str]:
    return {str(c["check_id"]) for c in report["results"].get(kind, [])}


def test_no_check_fails(report: dict[str, Any]) -> None:
    failed = [
        (c["check_id"], c["resource"], c["check_name"])
        for c in report["results"].get("failed_checks", [])
    ]
    assert not failed


def test_iam_checks_ran_and_passed_on_every_role(report: dict[str, Any]) -> None:
    assert ids(report, "passed_checks") >= IAM_CHECKS
    roles = {
        c["resource"] for c in report["results"]["passed_checks"] if c["check_id"] == "CKV_AWS_111"
    }
    assert roles == {
        "AWS::IAM::Role.RouterFunctionRole",
        "AWS::IAM::Role.LauncherFunctionRole",
        "AWS::IAM::Role.LauncherFunctionNightlyDrainRole",
        "AWS::IAM::Role.WorkerInstanceRole",
        "AWS::IAM::Role.ServerInstanceRole",
        "AWS::IAM::Policy.WebhookSigningKeyPolicy",
    }


def test_skips_are_the_listed_non_iam_ones(report: dict[str, Any]) -> None:
    skipped = ids(report, "skipped_checks")
    assert skipped <= EXPECTED_SKIPS
    assert not skipped & IAM_CHECKS
