"""`smart-router local --language` defaults to LANGUAGE, as its help says (issue 18): the
environment, then .env, then the setting's own default (`auto`), never a hard-coded `sv`."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

import smart_router.local.run as local_run
from smart_router.cli import main
from smart_router.local.sessions import sample_sessions

OUTPUT = io.StringIO()


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """The options `local` would run with; nothing is started."""
    options: list[Any] = []

    def fake_run(opts: Any, console: Any) -> Any:
        options.append(opts)
        return SimpleNamespace(ok=True)

    monkeypatch.setattr(local_run, "run_local", fake_run)
    monkeypatch.setattr(local_run, "stdout_console", lambda: Console(file=OUTPUT, width=200))
    OUTPUT.seek(0)
    OUTPUT.truncate()
    monkeypatch.setattr(local_run, "print_report", lambda *args: None)
    monkeypatch.delenv("LANGUAGE", raising=False)
    monkeypatch.delenv("language", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env unless the test writes one
    return options


def _run(tmp_path: Path, *extra: str) -> None:
    english = next(s for s in sample_sessions() if s.session_id == "demo-en")
    files = [str(c.path) for c in english.chunks[:1]]
    argv = ["local", "--session", "talk", "--model-dir", str(tmp_path), *extra, *files]
    assert main(argv) == 0


def test_without_language_anywhere_it_is_auto(captured: list[Any], tmp_path: Path) -> None:
    _run(tmp_path)
    [options] = captured
    assert options.language == "auto"
    # The session states nothing: the pipeline's LANGUAGE decides, as the help says.
    assert options.sessions[0].language is None


def test_language_from_the_environment(
    captured: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGUAGE", "en")
    _run(tmp_path)
    assert captured[0].language == "en"


def test_language_from_dotenv(captured: list[Any], tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LANGUAGE=fi\n")
    _run(tmp_path)
    assert captured[0].language == "fi"


def test_a_locale_list_is_not_a_language(
    captured: list[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANGUAGE", "en_US:en")  # GNU gettext's, set by many desktop shells
    _run(tmp_path)
    assert captured[0].language == "auto"
    assert "'en_US:en' is not a language code" in OUTPUT.getvalue()


def test_the_flag_wins(
    captured: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANGUAGE", "en")
    _run(tmp_path, "--language", "sv")
    [options] = captured
    assert options.language == "sv"
    assert options.sessions[0].language == "sv"
