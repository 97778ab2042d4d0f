"""step-305 publishes a model directory to the registry and records the pinned MODEL_ID."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model_registry.conftest import write_tiny_model
from tests.scripts.conftest import REGION, Steps, base_env, client


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "tiny-model")


def test_publishes_records_model_id_and_changes_nothing_the_second_time(
    tmp_path: Path, names: dict[str, str], moto_endpoint: str, tiny: Path
) -> None:
    steps = Steps(tmp_path / ".env", base_env(moto_endpoint))
    steps.ok(
        "000",
        "--non-interactive",
        "--set",
        f"BUCKET_NAME={names['bucket']}",
        "--set",
        f"AWS_REGION={REGION}",
    )
    s3 = client(moto_endpoint, "s3")
    s3.create_bucket(
        Bucket=names["bucket"], CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    out = steps.ok("305", "--model-dir", str(tiny), "--name", "tiny", "--language", "sv")
    assert out.splitlines()[-1] == "Next: scripts/step-301-fast-api-setup-ecr-repository.sh"
    model_id = steps.values()["MODEL_ID"]
    assert model_id.startswith(f"s3://{names['bucket']}/models/tiny/v-")
    version = model_id.rstrip("/").rsplit("/", 1)[1]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=names["bucket"])["Contents"]}
    assert {f"models/tiny/{version}/manifest.json", "models/tiny/latest.json"} <= keys
    before = steps.env_file.read_bytes()
    again = steps.ok("305", "--model-dir", str(tiny), "--name", "tiny", "--language", "sv")
    assert '"uploaded":[]' in again and '"latest_updated":false' in again
    assert steps.env_file.read_bytes() == before


def test_dry_run_prints_the_publish_and_the_version_without_aws(tmp_path: Path, tiny: Path) -> None:
    offline = Steps(tmp_path / ".env", base_env(None))
    offline.ok("000", "--non-interactive", "--set", "BUCKET_NAME=dry-bucket")
    before = offline.env_file.read_bytes()
    result = offline.run("305", "--dry-run", "--model-dir", str(tiny), "--name", "tiny")
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [line for line in result.stdout.splitlines() if line.startswith("DRY-RUN: ")]
    publish = next(c for c in calls if " model publish " in c)
    assert f"{tiny} s3://dry-bucket/models/tiny/" in publish
    # LANGUAGE=auto (step-000's default): the manifest takes the model's own languages.
    assert "--language" not in publish
    assert "would set MODEL_ID=s3://dry-bucket/models/tiny/v-" in result.stdout
    assert offline.env_file.read_bytes() == before
    ct2 = offline.run("305", "--dry-run", "--ct2-dir", str(tiny), "--name", "kb")
    assert "model import-ct2" in ct2.stdout and "model publish" in ct2.stdout
    swedish = Steps(tmp_path / "sv.env", base_env(None))
    swedish.ok(
        "000", "--non-interactive", "--set", "BUCKET_NAME=dry-bucket", "--set", "LANGUAGE=sv"
    )
    stated = swedish.run("305", "--dry-run", "--model-dir", str(tiny), "--name", "tiny")
    assert stated.returncode == 0, stated.stdout + stated.stderr
    assert "--language sv" in stated.stdout


def test_prerequisites_fail_with_one_sentence(tmp_path: Path, tiny: Path) -> None:
    offline = Steps(tmp_path / ".env", base_env(None))
    offline.ok("000", "--non-interactive", "--set", "BUCKET_NAME=dry-bucket")
    cases = [
        (["--dry-run", "--model-dir", str(tmp_path / "absent")], "no model directory at"),
        (["--model-dir", str(tiny), "--download"], "give only one of"),
        (["--name", "../x", "--dry-run"], "--name '../x' must be"),
        (["--frobnicate"], "unknown argument '--frobnicate'"),
        (["--model-dir"], "--model-dir needs a value"),
    ]
    for args, message in cases:
        result = offline.run("305", *args)
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
