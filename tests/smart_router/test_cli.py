from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from smart_router.cli import main
from tests.support.log_safety import check_no_secret_in_debug_logs, ssm_holding_the_secret
from tests.transcript_contracts.conftest import make_chunk

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "smart_router", "--help"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    assert "usage: smart-router" in out
    for command in ("keys", "stitch", "settings"):
        assert command in out


def test_keys_command_reports_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "audio/s1/chunk-0001.wav"]) == 0
    assert "AudioChunkKey session_id=s1 index=1 ext=wav" in capsys.readouterr().out
    assert main(["keys", "audio/s1/chunk-1.wav", "audio/s1/../x.wav"]) == 1
    assert "traversal" in capsys.readouterr().out


def test_stitch_command_writes_all_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "manifest.json").write_text('{"session_id": "s1", "chunk_count": 2}')
    for i in range(2):
        chunk = make_chunk(i, 4.0, [(0.0, 1.0, f"ord {i}")])
        (tmp_path / f"c{i}.json").write_text(chunk.model_dump_json())
    out = tmp_path / "out"
    m, c0, c1 = (str(tmp_path / n) for n in ("manifest.json", "c0.json", "c1.json"))
    code = main(["stitch", "--manifest", m, c1, c0, "--out-dir", str(out)])
    assert code == 0
    assert (out / "session.txt").read_text() == "ord 0\nord 1\n"
    assert json.loads((out / "session.json").read_text())["duration_s"] == 8.0
    assert (out / "session.srt").exists() and (out / "session.vtt").exists()
    assert "ord 0" in capsys.readouterr().out


def test_stitch_command_reports_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "manifest.json").write_text('{"session_id": "s1", "chunk_count": 2}')
    (tmp_path / "c0.json").write_text(make_chunk(0).model_dump_json())
    code = main(["stitch", "--manifest", str(tmp_path / "manifest.json"),
                 str(tmp_path / "c0.json"), "--out-dir", str(tmp_path / "o")])  # fmt: skip
    assert code == 2
    assert "1 chunk(s) missing (1)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_settings_command_names_missing_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("BUCKET_NAME", "QUEUE_URL", "MODEL_ID"):
        monkeypatch.delenv(name, raising=False)
    assert main(["settings", "worker"]) == 2
    err = capsys.readouterr().err
    assert "BUCKET_NAME is required" in err and "QUEUE_URL is required" in err


def test_verbose_never_logs_a_secret_read_from_ssm(caplog: pytest.LogCaptureFixture) -> None:
    # `smart-router -v serve` read the server key from SSM with botocore printing the response
    # body at DEBUG. The CLI's logging setup now holds botocore at INFO, whatever -v says.
    with ssm_holding_the_secret() as ssm:
        assert main(["-v", "settings", "status"]) == 0
        caplog.set_level(logging.DEBUG)  # pytest's handlers make basicConfig a no-op here
        check_no_secret_in_debug_logs(ssm, lambda: caplog.text)
