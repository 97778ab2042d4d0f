"""Spot interruption (P14) against a fake IMDSv2 on 127.0.0.1."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from batch_worker import fetch
from batch_worker.spot import ImdsClient, ImdsError, SpotNotice, SpotWatcher
from batch_worker.worker import EXIT_OK
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
        return fetch.decode(path, max_s)

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
