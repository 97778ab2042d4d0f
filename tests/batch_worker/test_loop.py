"""The receive loop with a fake engine: batching, crash recovery, poison, idle exit, deadline."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from batch_worker.progress import WorkerStats
from batch_worker.worker import EXIT_HARD_DEADLINE, EXIT_OK
from tests.batch_worker.support import (
    CORRUPT_AUDIO,
    LAYOUT,
    MAX_RECEIVE_COUNT,
    Aws,
    FakeEngine,
    RecordingEvents,
    TickingClock,
    settings,
    wav_bytes,
    worker,
)


class RecordingProgress:
    def __init__(self) -> None:
        self.updates: list[tuple[int, int | None]] = []
        self.closed = False

    def update(self, stats: WorkerStats, remaining: int | None) -> None:
        self.updates.append((stats.done, remaining))

    def close(self) -> None:
        self.closed = True


def test_drains_a_batch_with_one_engine_call(aws: Aws) -> None:
    for index in range(5):
        aws.put_chunk("s1", index, wav_bytes(1.0))
    aws.put_manifest("s1", 5)
    engine = FakeEngine()
    events = RecordingEvents()
    progress = RecordingProgress()
    run = worker(aws, engine, settings(aws), events=events, progress=progress)

    assert run.run() == EXIT_OK
    assert engine.calls == [5]  # the whole batch in one transcribe_many (GPU efficiency)
    assert len(aws.keys("transcripts/s1/chunk-")) == 5
    assert [o.session_id for o in events.stitched] == ["s1"]
    assert run.stats.transcribed == 5 and run.stats.sessions_stitched == 1
    assert run.exit_reason == "idle"
    assert aws.counts() == (0, 0)
    assert progress.updates == [(5, 0)] and progress.closed


def test_killed_mid_batch_is_redelivered_and_finished_once(aws: Aws) -> None:
    """An exception after the download (a crash) deletes nothing; after the visibility
    timeout the next run finishes every chunk, each transcript and the session once."""
    for index in range(3):
        aws.put_chunk("s1", index, wav_bytes(1.0))
    aws.put_manifest("s1", 3)

    def crash(path: Path, max_s: float) -> np.ndarray:
        raise RuntimeError("killed")

    short = settings(aws, visibility_timeout_s=1, heartbeat_interval_s=0.5)
    events = RecordingEvents()
    with pytest.raises(RuntimeError, match="killed"):
        worker(aws, FakeEngine(), short, decode=crash, events=events).run()
    assert aws.keys("transcripts/") == []
    assert aws.counts() == (0, 3)  # still in flight: nothing deleted, nothing released

    time.sleep(1.1)  # the visibility timeout runs out
    second = worker(aws, FakeEngine(), short, events=events)
    assert second.run() == EXIT_OK
    assert second.stats.transcribed == 3 and second.stats.skipped == 0
    assert len(aws.keys("transcripts/s1/chunk-")) == 3
    assert [o.session_id for o in events.stitched] == ["s1"]
    assert aws.counts() == (0, 0)


def test_poison_reaches_the_dlq_and_never_blocks_the_rest(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    poison = aws.put_chunk("bad", 0, CORRUPT_AUDIO, ext="mp3")
    for index in range(2):
        aws.put_chunk("good", index, wav_bytes(1.0))
    events = RecordingEvents()
    run = worker(
        aws,
        FakeEngine(),
        settings(aws, retry_delay_s=0, idle_exit_s=3.0),
        events=events,
        clock=TickingClock(1.0),
    )

    assert run.run() == EXIT_OK
    assert len(aws.keys("transcripts/good/chunk-")) == 2
    assert aws.keys("transcripts/bad/") == []
    assert [body["key"] for body in aws.dlq_bodies()] == [poison]
    assert aws.counts() == (0, 0)
    # Received maxReceiveCount times, each failure reported with its reason.
    assert [key for _, key, _ in events.failed] == [poison] * MAX_RECEIVE_COUNT
    assert all("undecodable" in reason for _, _, reason in events.failed)
    assert run.stats.failed == MAX_RECEIVE_COUNT and run.stats.transcribed == 2


def test_idle_exit_after_the_set_time_then_shutdown(aws: Aws) -> None:
    clock = TickingClock(1.0)
    shutdowns: list[bool] = []
    run = worker(
        aws,
        FakeEngine(),
        settings(aws, idle_exit_s=5.0, shutdown_on_exit=True),
        clock=clock,
        shutdown=lambda: shutdowns.append(True),
    )
    assert run.run() == EXIT_OK
    assert run.exit_reason == "idle"
    assert clock.now >= 5.0  # not at the first empty poll
    assert shutdowns == [True]


def test_no_shutdown_unless_configured(aws: Aws) -> None:
    shutdowns: list[bool] = []
    run = worker(aws, FakeEngine(), settings(aws), shutdown=lambda: shutdowns.append(True))
    assert run.run() == EXIT_OK
    assert shutdowns == []


def test_deadline_stops_receiving_and_leaves_the_rest_queued(aws: Aws) -> None:
    for index in range(6):
        aws.put_chunk("s1", index, wav_bytes(0.5))
    shutdowns: list[bool] = []
    run = worker(
        aws,
        FakeEngine(),
        settings(aws, worker_batch_size=2, max_runtime_s=10.0, shutdown_on_exit=True),
        clock=TickingClock(4.0),  # polls at 4 and 8 s; the deadline hits before the third
        shutdown=lambda: shutdowns.append(True),
    )
    assert run.run() == EXIT_OK
    assert run.exit_reason == "deadline"
    assert run.stats.transcribed == 4
    assert aws.counts() == (2, 0)  # untouched, visible for the next run
    assert shutdowns == [True]


def test_watchdog_releases_and_exits_when_the_main_thread_hangs(aws: Aws) -> None:
    for index in range(2):
        aws.put_chunk("s1", index, wav_bytes(0.5))
    exited = threading.Event()
    codes: list[int] = []
    visible_at_exit: list[tuple[int, int]] = []

    def hard_exit(code: int) -> None:
        codes.append(code)
        visible_at_exit.append(aws.counts())
        exited.set()

    def hang(call: int, audios: Any) -> None:
        assert exited.wait(10), "the watchdog never fired"

    shutdowns: list[bool] = []
    run = worker(
        aws,
        FakeEngine(hook=hang),
        # 1 s: the first receive (moto, a loaded CI box) must come back before the deadline.
        settings(aws, max_runtime_s=1.0, stop_grace_s=0.0, shutdown_on_exit=True),
        shutdown=lambda: shutdowns.append(True),
        hard_exit=hard_exit,
        watchdog_slack_s=0.2,
    )
    run.run()
    assert codes == [EXIT_HARD_DEADLINE]
    assert visible_at_exit == [(2, 0)]  # in-flight messages were handed back first
    assert shutdowns  # powered off on the way out


@pytest.fixture
def restore_signals() -> Iterator[None]:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_signals")
def test_sigterm_stops_cleanly_without_shutdown(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(0.5))
    shutdowns: list[bool] = []
    run = worker(
        aws,
        FakeEngine(),
        settings(aws, shutdown_on_exit=True, idle_exit_s=1000.0),
        shutdown=lambda: shutdowns.append(True),
    )
    run.install_signal_handlers()
    signal.raise_signal(signal.SIGTERM)
    assert run.run() == EXIT_OK
    assert run.exit_reason == "sigterm"
    assert aws.counts() == (1, 0)  # nothing taken
    assert shutdowns == []


def test_heartbeat_keeps_a_long_chunk_invisible(aws: Aws) -> None:
    """A 1 s visibility timeout, a chunk in work for 2 s: nobody else may receive it."""
    aws.put_chunk("s1", 0, wav_bytes(0.5))
    stolen: list[int] = []

    def slow(call: int, audios: Any) -> None:
        for _ in range(4):
            time.sleep(0.5)
            response = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)
            stolen.append(len(response.get("Messages", [])))

    run = worker(
        aws,
        FakeEngine(hook=slow),
        settings(aws, visibility_timeout_s=1, heartbeat_interval_s=0.3),
    )
    assert run.run() == EXIT_OK
    assert stolen == [0, 0, 0, 0]
    assert run.heartbeat.extensions >= 3
    assert LAYOUT.chunk_transcript("s1", 0) in aws.keys("transcripts/")
    assert aws.counts() == (0, 0)
