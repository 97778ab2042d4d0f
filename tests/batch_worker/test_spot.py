"""Spot interruption (P14) against a fake IMDSv2 on 127.0.0.1."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from batch_worker.errors import ImdsError
from batch_worker.settings import WorkerSettings
from batch_worker.spot import ImdsClient, SpotNotice, SpotWatcher
from batch_worker.worker import EXIT_HARD_DEADLINE, EXIT_OK, SPOT_SAFETY_S
from chunk_job.audio import decode
from tests.batch_worker.support import (
    Aws,
    FakeEngine,
    FakeImds,
    RecordingEvents,
    settings,
    wav_bytes,
    worker,
)


def test_imds_client_speaks_imdsv2(imds: FakeImds) -> None:
    client = ImdsClient(imds.url)
    assert client.instance_action() is None  # 404: no interruption scheduled
    at = datetime(2026, 11, 21, 0, 2, tzinfo=UTC)
    imds.arm(at)
    assert client.instance_action() == SpotNotice(action="terminate", time=at)
    assert imds.token_requests == 1  # the token is reused
    assert imds.unauthorized == 0


def test_imds_client_refreshes_a_rejected_token(imds: FakeImds) -> None:
    client = ImdsClient(imds.url)
    client._token = "stale"  # as if IMDS restarted since
    assert client.instance_action() is None
    assert imds.unauthorized == 1 and imds.token_requests == 1


def test_unreachable_imds_raises_a_typed_error() -> None:
    with pytest.raises(ImdsError):
        ImdsClient("http://127.0.0.1:9").instance_action()


def test_watcher_keeps_polling_after_failures(imds: FakeImds) -> None:
    class Flaky(ImdsClient):
        calls = 0

        def instance_action(self) -> SpotNotice | None:
            Flaky.calls += 1
            if Flaky.calls <= 2:
                raise ImdsError("connection refused")
            return super().instance_action()

    imds.arm(datetime.now(UTC) + timedelta(minutes=2))
    got = threading.Event()
    notices: list[SpotNotice] = []

    def on_notice(notice: SpotNotice) -> None:
        notices.append(notice)
        got.set()

    watcher = SpotWatcher(Flaky(imds.url), 0.01, on_notice)
    watcher.start()
    assert got.wait(5)
    watcher.stop()
    assert [n.action for n in notices] == ["terminate"]


def test_notice_mid_batch_releases_in_flight_then_a_second_worker_finishes(
    aws: Aws, imds: FakeImds
) -> None:
    for index in range(4):
        aws.put_chunk("s1", index, wav_bytes(0.5))
    aws.put_manifest("s1", 4)
    run_holder: list[Any] = []

    def decode_then_interrupt(path: Path, max_s: float) -> np.ndarray:
        # The notice arrives while the batch is being downloaded and decoded.
        imds.arm(datetime.now(UTC) + timedelta(minutes=2))
        assert run_holder[0].stop.wait(5), "the watcher never saw the notice"
        return decode(path, max_s)

    engine = FakeEngine()
    shutdowns: list[bool] = []
    first = worker(
        aws,
        engine,
        settings(aws, spot_poll_interval_s=0.05, idle_exit_s=1000.0, shutdown_on_exit=True),
        decode=decode_then_interrupt,
        imds=ImdsClient(imds.url),
        shutdown=lambda: shutdowns.append(True),
    )
    run_holder.append(first)

    assert first.run() == EXIT_OK
    assert first.exit_reason == "spot_interruption"
    assert engine.calls == []  # not started: handed back rather than risked
    assert first.stats.released == 4
    assert aws.counts() == (4, 0)  # visible again at once (visibility 0)
    assert shutdowns == []  # EC2 is ending the instance itself

    events = RecordingEvents()
    second = worker(aws, FakeEngine(), settings(aws), events=events)
    assert second.run() == EXIT_OK
    assert len(aws.keys("transcripts/s1/chunk-")) == 4
    assert [o.session_id for o in events.stitched] == ["s1"]
    assert aws.counts() == (0, 0)


def test_work_in_transcription_finishes_within_the_notice(aws: Aws, imds: FakeImds) -> None:
    for index in range(2):
        aws.put_chunk("s1", index, wav_bytes(0.5))
    aws.put_chunk("s1", 2, wav_bytes(0.5))  # stays queued: the batch holds two
    run_holder: list[Any] = []

    def interrupted_during_inference(call: int, audios: Any) -> None:
        imds.arm(datetime.now(UTC) + timedelta(minutes=2))
        assert run_holder[0].stop.wait(5)

    first = worker(
        aws,
        FakeEngine(hook=interrupted_during_inference),
        settings(aws, worker_batch_size=2, spot_poll_interval_s=0.05, idle_exit_s=1000.0),
        imds=ImdsClient(imds.url),
    )
    run_holder.append(first)
    assert first.run() == EXIT_OK
    assert first.stats.transcribed == 2 and first.stats.released == 0
    assert len(aws.keys("transcripts/s1/chunk-")) == 2
    assert aws.counts() == (1, 0)  # the third was never received


def test_inference_overrunning_the_notice_has_its_messages_released(
    aws: Aws, imds: FakeImds
) -> None:
    """The grace ends while the engine still runs: the heartbeat hands the messages back,
    so another worker can take them before the instance dies; nothing is lost."""
    for index in range(2):
        aws.put_chunk("s1", index, wav_bytes(0.5))
    run_holder: list[Any] = []
    counts_during: list[tuple[int, int]] = []

    def overrun(call: int, audios: Any) -> None:
        imds.arm(datetime.now(UTC) + timedelta(minutes=2))
        run = run_holder[0]
        assert run.stop.wait(5)
        deadline = threading.Event()
        # The heartbeat untracks the messages before its ChangeMessageVisibility call returns:
        # wait for the queue to show the release, not for the registry to empty.
        for _ in range(100):
            if not run.heartbeat.in_flight() and aws.counts() == (2, 0):
                break
            deadline.wait(0.05)
        counts_during.append(aws.counts())

    first = worker(
        aws,
        FakeEngine(hook=overrun),
        settings(aws, spot_poll_interval_s=0.05, stop_grace_s=0.2, idle_exit_s=1000.0),
        imds=ImdsClient(imds.url),
    )
    run_holder.append(first)
    assert first.run() == EXIT_OK
    assert counts_during == [(2, 0)]
    # The transcripts finished anyway: a worker that takes the messages skips them.
    assert len(aws.keys("transcripts/s1/chunk-")) == 2


# -- P14 measured on the clock -------------------------------------------------------------

# Scheduling jitter allowed on top of the promised 5 s (threads on a loaded 2-core CI box).
_JITTER_S = 0.35
NOTICE_S = 120.0  # EC2 terminates a spot instance two minutes after the notice


@pytest.mark.slow
def test_p14_measured_poll_every_5_s_and_exit_well_within_the_notice(aws: Aws) -> None:
    """With the shipped SPOT_POLL_INTERVAL_S and STOP_GRACE_S and an IMDS that takes 1 s to
    answer, reads still start at most 5 s apart (the interval is a cadence, not a pause
    after each answer); the notice posted while a batch is in inference is seen within 5 s,
    the batch finishes, and the worker returns long before EC2's 120 s are up."""
    shipped = WorkerSettings.model_fields
    poll_s = shipped["spot_poll_interval_s"].default
    assert poll_s <= 5.0
    imds = FakeImds(answer_delay_s=1.0)
    for index in range(2):
        aws.put_chunk("s1", index, wav_bytes(0.5))
    run_holder: list[Any] = []
    seen: list[float] = []

    def notice_during_inference(call: int, audios: Any) -> None:
        # Two reads before the notice, so the cadence is measured while nothing happens.
        for _ in range(200):
            if len(imds.action_times) >= 2:
                break
            time.sleep(0.05)
        time.sleep(imds.answer_delay_s + 0.1)  # the second read has been answered: 404
        imds.arm(datetime.now(UTC) + timedelta(seconds=NOTICE_S))
        assert run_holder[0].stop.wait(poll_s + 5), "the watcher never saw the notice"
        seen.append(time.monotonic())
        time.sleep(1.0)  # the rest of the batch's inference

    try:
        first = worker(
            aws,
            FakeEngine(hook=notice_during_inference),
            settings(
                aws,
                spot_poll_interval_s=poll_s,
                stop_grace_s=shipped["stop_grace_s"].default,
                idle_exit_s=1000.0,
            ),
            imds=ImdsClient(imds.url),
        )
        run_holder.append(first)
        assert first.run() == EXIT_OK
        returned = time.monotonic()
    finally:
        imds.close()

    assert imds.armed_at is not None
    gaps = [b - a for a, b in itertools.pairwise(imds.action_times)]
    assert len(gaps) >= 2
    assert max(gaps) <= poll_s + _JITTER_S, gaps
    # Seen: the first read after arming answered it (1 s answer delay included).
    assert seen[0] - imds.armed_at <= poll_s + 1.0 + _JITTER_S
    assert first.exit_reason == "spot_interruption"
    assert first.stats.transcribed == 2 and first.stats.released == 0
    assert aws.counts() == (0, 0)
    exit_s = returned - imds.armed_at
    assert exit_s < NOTICE_S - SPOT_SAFETY_S
    print(f"P14 measured: read gaps {[round(g, 3) for g in gaps]} s; exit {exit_s:.2f} s")


def test_worker_hung_in_inference_exits_before_the_instance_is_terminated(
    aws: Aws, imds: FakeImds
) -> None:
    """Inference overruns the notice: the messages go back at the grace's end, and the
    watchdog ends the process before EC2 does (a clean log instead of a cut one)."""
    for index in range(2):
        aws.put_chunk("s1", index, wav_bytes(0.5))
    exited = threading.Event()
    exits: list[tuple[int, float, tuple[int, int]]] = []
    terminate_at: list[float] = []  # EC2's termination time on the monotonic clock

    def hard_exit(code: int) -> None:
        exits.append((code, time.monotonic(), aws.counts()))
        exited.set()

    def hang(call: int, audios: Any) -> None:
        at = (datetime.now(UTC) + timedelta(seconds=SPOT_SAFETY_S + 3)).replace(microsecond=0)
        terminate_at.append(time.monotonic() + (at - datetime.now(UTC)).total_seconds())
        imds.arm(at)
        exited.wait(30)

    run = worker(
        aws,
        FakeEngine(hook=hang),
        settings(aws, spot_poll_interval_s=0.05, idle_exit_s=1000.0),
        imds=ImdsClient(imds.url),
        hard_exit=hard_exit,
        watchdog_slack_s=0.5,
    )
    run.run()
    assert len(exits) == 1, "the watchdog never ended the hung worker"
    code, when, counts = exits[0]
    assert code == EXIT_HARD_DEADLINE
    assert when < terminate_at[0]
    assert counts == (2, 0)  # in-flight messages handed back before the exit
