"""Publish -> load from s3:// -> transcribe, with the real Whisper base model.

moto's server runs in a thread on loopback (a real HTTP endpoint, AWS_ENDPOINT_URL), and the
command line is driven in-process: `model publish`, again (nothing uploaded), then
`model transcribe --model s3://...`, which downloads, verifies and loads the version.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from smart_router import model_commands
from smart_router.evaluation import wer
from tests.support.speech import ENGLISH_TEXT, encode, espeak_available, synthesize

pytestmark = pytest.mark.slow

REGION = "eu-north-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def registry(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the threaded moto server; boto3 pointed at it through the env."""
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"}
    )
    return f"s3://{bucket}/models/whisper-base/"


def _run(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="smart-router")
    model_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_publish_then_transcribe_from_the_registry(
    model_dir: Path, registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed (scripts/dev-setup.sh installs it)")
    code, out, err = _run(["model", "publish", str(model_dir), registry], capsys)
    assert code == 0, err
    published: dict[str, Any] = json.loads(out)
    assert published["manifest_written"] and published["latest_updated"]
    assert "model.safetensors" in published["uploaded"]

    code, out, err = _run(["model", "publish", str(model_dir), registry], capsys)
    assert code == 0, err
    again = json.loads(out)
    assert again["uploaded"] == [] and not again["manifest_written"]
    assert not again["latest_updated"] and again["version"] == published["version"]

    audio = encode(synthesize(ENGLISH_TEXT, "en"), tmp_path / "english.wav")
    argv = ["model", "transcribe", "--model", registry, "--cache-dir", str(tmp_path / "cache")]
    code, out, err = _run([*argv, "--language", "en", "--device", "cpu", str(audio)], capsys)
    assert code == 0, err
    line = json.loads(out.strip().splitlines()[-1])
    assert line["model"] == "whisper-base"
    assert line["model_version"] == published["version"]
    assert wer(ENGLISH_TEXT, line["text"]) < 0.2, line["text"]
