"""`smart-router model ...` subcommands."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from smart_router import model_commands
from tests.model_registry.conftest import write_tiny_model


def _run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="smart-router")
    model_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    result: int = args.handler(args)
    return result


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _run(["model", "--help"])
    out = capsys.readouterr().out
    for name in ("prepare", "import-ct2", "info", "transcribe", "publish", "fetch"):
        assert name in out


@pytest.mark.slow
def test_info_describes_both_formats(
    model_dir: Path, ct2_package_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["model", "info", str(model_dir)]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["format"] == "transformers"
    assert described["complete"] is True
    assert described["languages"] == 99


@pytest.mark.slow
def test_prepare_on_a_prepared_model_prints_its_path(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["model", "prepare", "--dest", str(model_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(model_dir)


@pytest.mark.slow
def test_import_of_a_truncated_checkpoint_fails_with_a_message(
    ct2_package_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ct2_package_dir / "tokenizer.json", src / "tokenizer.json")
    (src / "model.bin").symlink_to(ct2_package_dir / "model.bin.part1")
    assert _run(["model", "import-ct2", str(src), str(tmp_path / "out")]) == 1
    assert "truncated" in capsys.readouterr().err


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-north-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("s3").create_bucket(
            Bucket="cli-models", CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
        )
        yield "cli-models"


def test_publish_plan_fetch_and_a_damaged_file(
    bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = write_tiny_model(tmp_path / "tiny")
    uri = f"s3://{bucket}/models/tiny/"
    assert _run(["model", "publish", "--plan", "--language", "sv", str(model), uri]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["languages"] == ["sv"]
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    assert "Contents" not in listed  # --plan calls no S3

    assert _run(["model", "publish", "--language", "sv", str(model), uri]) == 0
    published = json.loads(capsys.readouterr().out)
    assert published["uri"] == planned["uri"] == f"{uri}{planned['version']}/"

    cache = tmp_path / "cache"
    assert _run(["model", "fetch", "--cache-dir", str(cache), uri]) == 0
    fetched = json.loads(capsys.readouterr().out)
    assert fetched["version"] == planned["version"] and not fetched["from_cache"]

    key = f"models/tiny/{planned['version']}/files/tokenizer.json"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b'{"model": {"type": "BPF"}}')
    assert _run(["model", "fetch", "--cache-dir", str(tmp_path / "other"), uri]) == 1
    assert "model file tokenizer.json: sha256" in capsys.readouterr().err
