"""Heartbeat cap, stop control, progress and logging, CLI wiring."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from batch_worker.heartbeat import Heartbeat, StopControl
from batch_worker.progress import JsonFormatter, LogProgress, WorkerStats, summary_line
from batch_worker.queue import MAX_VISIBILITY_TOTAL_S, ReceivedMessage, WorkQueue
from smart_router.cli import main


class RecordingQueue(WorkQueue):
    def __init__(self) -> None:
        self.changes: list[list[tuple[str, int]]] = []

    def change_visibility(self, changes: Sequence[tuple[ReceivedMessage, int]]) -> list[str]:
        self.changes.append([(m.message_id, s) for m, s in changes])
        return []


def message(message_id: str, received_at: float) -> ReceivedMessage:
    return ReceivedMessage(message_id, f"rh-{message_id}", "{}", 1, received_at)


def test_heartbeat_extends_but_never_past_12_hours() -> None:
    queue = RecordingQueue()
    beat = Heartbeat(queue, visibility_timeout_s=600, interval_s=60, stop=StopControl())
    beat.track([message("fresh", 0.0), message("old", -(MAX_VISIBILITY_TOTAL_S - 100))])
    beat.extend(now=0.0)
    [changes] = queue.changes
    assert dict(changes)["fresh"] == 600
    assert 0 < dict(changes)["old"] <= 100  # capped by what is left of the 12 h
    beat.extend(now=200.0)  # "old" is past 12 h now: no change attempted for it
    assert [m for m, _ in queue.changes[-1]] == ["fresh"]


def test_untracked_messages_are_no_longer_extended() -> None:
    queue = RecordingQueue()
    beat = Heartbeat(queue, visibility_timeout_s=600, interval_s=60, stop=StopControl())
    done = message("done", 0.0)
    beat.track([done])
    assert beat.untrack(done)
    beat.extend(now=1.0)
    assert queue.changes == []


def test_stop_keeps_the_first_reason_and_the_earliest_release() -> None:
    now = [100.0]
    stop = StopControl(monotonic=lambda: now[0])
    stop.request("spot_interruption", 90)
    stop.request("sigterm", 30)
    stop.request("deadline", 200)
    assert stop.requested and stop.reason == "spot_interruption"
    assert stop.release_at == 130.0


def test_summary_and_progress_lines(caplog: pytest.LogCaptureFixture) -> None:
    stats = WorkerStats(transcribed=3, skipped=1, failed=1, sessions_stitched=2)
    stats.audio_s, stats.busy_s = 7200.0, 600.0
    line = summary_line(stats, "idle")
    assert "transcribed 3" in line and "skipped 1" in line and "failed 1" in line
    assert "sessions stitched 2" in line and "2.000 h" in line and "12.0x" in line
    with caplog.at_level(logging.INFO):
        LogProgress().update(stats, remaining=10)
    [record] = [r for r in caplog.records if r.getMessage() == "progress"]
    assert record.queue_remaining == 10  # type: ignore[attr-defined]
    assert record.eta_s == pytest.approx(1200.0)  # type: ignore[attr-defined]


def test_json_formatter_carries_extra_fields() -> None:
    record = logging.LogRecord("w", logging.INFO, "f", 1, "chunk %s", ("x",), None)
    record.s3_key = "audio/s/chunk-1.wav"
    data = json.loads(JsonFormatter().format(record))
    assert data["message"] == "chunk x" and data["level"] == "INFO"
    assert data["s3_key"] == "audio/s/chunk-1.wav"


def test_cli_names_missing_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("QUEUE_URL", "BUCKET_NAME", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env
    assert main(["worker", "--idle-exit-s", "0"]) == 2
    err = capsys.readouterr().err
    assert "QUEUE_URL is required" in err and "BUCKET_NAME is required" in err


def test_worker_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["worker", "--help"])
    assert info.value.code == 0
    assert "--idle-exit-s" in capsys.readouterr().out
