"""`smart-router model ...` subcommands."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from smart_router import model_commands


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
    for name in ("prepare", "import-ct2", "info", "transcribe"):
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
