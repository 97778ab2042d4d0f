"""scripts/drain-now.sh: the launcher's {"action": "drain"} on the stack's launcher function,
in --dry-run and against a stand-in AWS CLI (moto cannot run a Lambda without Docker)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.scripts.conftest import SCRIPTS, Steps, base_env

STUB = """#!/usr/bin/env python3
import json, pathlib, sys
args = sys.argv[1:]
pathlib.Path(sys.argv[0] + ".calls").open("a").write(json.dumps(args) + "\\n")
if "get-caller-identity" in args:
    print("123456789012")
elif "describe-stacks" in args:
    print("StackStatus\\tCREATE_COMPLETE\\nLauncherFunctionName\\tstack-LauncherFunction-x1")
elif "invoke" in args:
    payload = args[args.index("--payload") + 1].removeprefix("fileb://")
    request = json.loads(pathlib.Path(payload).read_text())
    failing = request.get("action") != "drain"
    answer = {"status": "launched", "visible_messages": 7, "launched": ["i-0abc"]}
    pathlib.Path(args[-1]).write_text(json.dumps(answer))
    print(json.dumps({"StatusCode": 200, **({"FunctionError": "Unhandled"} if failing else {})}))
"""


@pytest.fixture
def configured(tmp_path: Path) -> Steps:
    runner = Steps(tmp_path / ".env", base_env(None))
    runner.ok("000", "--non-interactive", "--set", "BUCKET_NAME=drain-bucket")
    return runner


def drain(
    steps: Steps, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**steps.env, "ENV_FILE": str(steps.env_file), **(extra or {})}
    return subprocess.run(
        ["bash", str(SCRIPTS / "drain-now.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dry_run_prints_the_invoke_of_the_stacks_launcher(configured: Steps) -> None:
    result = drain(configured, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [line for line in result.stdout.splitlines() if line.startswith("DRY-RUN: ")]
    assert any(
        "cloudformation describe-stacks --stack-name smart-transcription-router" in c for c in calls
    )
    invoke = next(c for c in calls if " lambda invoke " in c)
    assert "--function-name" in invoke and "LauncherFunctionName" in invoke
    assert "--payload fileb://" in invoke
    named = drain(configured, "--dry-run", "--function", "my-launcher")
    assert "--function-name my-launcher" in named.stdout
    assert "describe-stacks" not in named.stdout


def test_invokes_the_launcher_with_drain_and_prints_its_answer(
    configured: Steps, tmp_path: Path
) -> None:
    stub = tmp_path / "aws"
    stub.write_text(STUB)
    stub.chmod(0o755)
    extra = {"AWS_CLI": str(stub), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    result = drain(configured, extra=extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stack-LauncherFunction-x1 answered" in result.stdout
    assert '"visible_messages": 7' in result.stdout
    calls = [json.loads(line) for line in Path(f"{stub}.calls").read_text().splitlines()]
    invoke = next(c for c in calls if "invoke" in c)
    assert invoke[invoke.index("--function-name") + 1] == "stack-LauncherFunction-x1"


def test_unknown_arguments_are_refused(configured: Steps) -> None:
    result = drain(configured, "--now")
    assert result.returncode == 1
    assert "unknown argument '--now'" in result.stderr
