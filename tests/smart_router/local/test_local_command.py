"""`smart-router local` as a user runs it: their files in, a session transcript out; Ctrl-C
stops everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from smart_router.cli import main
from smart_router.local.sessions import sample_sessions

ROOT = Path(__file__).resolve().parents[3]


def test_users_files_become_a_stitched_session(model_dir: Path, tmp_path: Path) -> None:
    english = next(s for s in sample_sessions() if s.session_id == "demo-en")
    files = [str(c.path) for c in english.chunks[:2]]
    out = tmp_path / "out"
    code = main(
        [
            "local",
            "--session",
            "my-talk",
            "--language",
            "en",
            "--model-dir",
            str(model_dir),
            "--output",
            str(out),
            *files,
        ]
    )
    assert code == 0
    text = (out / "my-talk" / "session.txt").read_text(encoding="utf-8").lower()
    assert "good morning everyone" in text
    assert "last year" in text
    for fmt in ("json", "srt", "vtt"):
        assert (out / "my-talk" / f"session.{fmt}").stat().st_size > 0


def test_bad_files_are_refused_before_anything_starts(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio")
    assert main(["local", "--session", "x", str(notes), "--output", str(tmp_path)]) == 2
    assert main(["local", str(notes), "--output", str(tmp_path)]) == 2
    assert not (tmp_path / "logs").exists()


def test_server_late_goes_alone_and_with_seconds(tmp_path: Path) -> None:
    for extra in (["--server-down"], ["--stop-server-after", "2"], []):
        seconds = "-1" if not extra else "5"
        argv = ["local", "--server-late", seconds, *extra, "--output", str(tmp_path)]
        assert main(argv) == 2
    assert not (tmp_path / "logs").exists()


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_ctrl_c_stops_every_process_it_started(model_dir: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smart_router",
            "local",
            "--model-dir",
            str(model_dir),
            "--output",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        children: set[int] = set()
        while time.monotonic() < deadline and not children:
            children = _children(proc.pid)
            time.sleep(0.2)
        assert children, "the local run started no server"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    assert [pid for pid in children if _alive(pid)] == []
