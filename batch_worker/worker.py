"""The batch worker: drain the SQS queue in batches until idle, stopped or past its deadline.

Each received batch goes through :class:`batch_worker.batch.BatchProcessor` (the chunk job
under the queue's rules, shared with the server's drainer: docs/design.md P7, P8, P10-P12).
This module is the loop around it: receive with back-off, idle exit and hard deadline (P13),
spot notices and SIGTERM (P14), the watchdog, and powering the machine off.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Final

from batch_worker.batch import BatchProcessor, Outcome, QueueRules
from batch_worker.errors import QueueError
from batch_worker.heartbeat import Heartbeat, StopControl
from batch_worker.progress import LogProgress, ProgressSink, WorkerStats, summary_line
from batch_worker.queue import ReceivedMessage, WorkQueue
from batch_worker.settings import WorkerSettings
from batch_worker.spot import ImdsClient, SpotNotice, SpotWatcher
from chunk_job import ChunkJob, Limits
from chunk_job.audio import Decoder, decode
from chunk_job.engine import BatchTranscriber, transcribe_each
from notifications.session_events import NotificationsOff, SessionEvents
from transcript_contracts.keys import KeyLayout
from transcript_store import TranscriptStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_HARD_DEADLINE: Final = 70
# Reasons after which the machine is powered off (when SHUTDOWN_ON_EXIT): a spot notice or
# SIGTERM means someone else is already ending the instance or wants the worker stopped only.
SHUTDOWN_REASONS: Final = frozenset({"idle", "deadline", "queue_error"})
# Consecutive failed receives before the worker gives up (back-off 1, 2, 4, 8 s in between).
MAX_RECEIVE_FAILURES: Final = 5
# A spot notice's termination time minus this is when in-flight messages must be back.
SPOT_SAFETY_S: Final = 15.0
# The watchdog kills the process this long after the deadline plus the stop grace.
WATCHDOG_SLACK_S: Final = 30.0
# After a spot notice the slack is cut so the process ends before EC2 does: messages are back
# SPOT_SAFETY_S before the termination time, the process ends at most this long after that.
SPOT_EXIT_SLACK_S: Final = SPOT_SAFETY_S - 5.0
# How often the watchdog looks for a stop request while nothing is wrong.
_WATCHDOG_TICK_S: Final = 0.25


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _power_off() -> None:
    """``shutdown -h now``; with shutdown behaviour terminate, EC2 then terminates the
    instance. Fixed argv, no shell."""
    try:
        subprocess.run(["shutdown", "-h", "now"], check=True, timeout=30)  # noqa: S607
    except (OSError, subprocess.SubprocessError) as exc:
        logger.error("shutdown failed: %s", exc)


@dataclass
class WorkerDeps:
    """Everything the worker talks to, injected (moto, fake clocks and engines in tests)."""

    settings: WorkerSettings
    queue: WorkQueue
    s3: S3Client
    engine: BatchTranscriber
    store: TranscriptStore
    events: SessionEvents = field(default_factory=NotificationsOff)
    decode: Decoder = decode
    # The loop's clock (idle time, graceful deadline); threads always use real time.
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = _utc_now
    shutdown: Callable[[], None] = _power_off
    # The registry version of the loaded model (v-<hash>), written into every chunk transcript.
    model_version: str | None = None

    @property
    def layout(self) -> KeyLayout:
        return self.settings.layout

    def processor(
        self, heartbeat: Heartbeat, stop: StopControl, stats: WorkerStats | None = None
    ) -> BatchProcessor:
        """The chunk job as the worker runs it, under the queue's rules."""
        settings = self.settings
        job = ChunkJob(
            s3=self.s3,
            store=self.store,
            layout=settings.layout,
            limits=Limits(
                settings.max_download_bytes, settings.max_audio_seconds, settings.fetch_timeout_s
            ),
            transcribed_by="worker",
            default_language=settings.language,
            model_version=self.model_version,
            word_timestamps=settings.word_timestamps,
            decoder=self.decode,
            now=self.now,
        )
        rules = QueueRules(
            allowed_buckets=(settings.bucket_name,),
            buckets_named=f"BUCKET_NAME ({settings.bucket_name!r})",
            retry_delay_s=settings.retry_delay_s,
        )
        return BatchProcessor(
            job,
            self.queue,
            partial(transcribe_each, self.engine),
            rules,
            heartbeat,
            stop,
            events=self.events,
            stats=stats,
        )


def handle(message: ReceivedMessage, deps: WorkerDeps) -> Outcome:
    """Process one message on its own (no heartbeat thread, no stop): the batch of one."""
    stop = StopControl()
    heartbeat = Heartbeat(
        deps.queue,
        visibility_timeout_s=deps.settings.visibility_timeout_s,
        interval_s=deps.settings.heartbeat_interval_s,
        stop=stop,
    )
    [outcome] = deps.processor(heartbeat, stop).process([message])
    return outcome


class Worker:
    """The receive loop: batches until idle, stopped (spot, SIGTERM) or past its deadline."""

    def __init__(
        self,
        deps: WorkerDeps,
        *,
        progress: ProgressSink | None = None,
        imds: ImdsClient | None = None,
        hard_exit: Callable[[int], None] = os._exit,
        watchdog_slack_s: float = WATCHDOG_SLACK_S,
    ) -> None:
        self.deps = deps
        settings = deps.settings
        self.stop = StopControl()
        self.heartbeat = Heartbeat(
            deps.queue,
            visibility_timeout_s=settings.visibility_timeout_s,
            interval_s=settings.heartbeat_interval_s,
            stop=self.stop,
        )
        self.stats = WorkerStats()
        self.processor = deps.processor(self.heartbeat, self.stop, self.stats)
        self.progress: ProgressSink = progress or LogProgress()
        self.exit_reason: str | None = None
        self._imds = imds
        self._hard_exit = hard_exit
        self._watchdog_slack_s = watchdog_slack_s
        self._spot_notice = threading.Event()
        self._finished = threading.Event()

    # -- stop requests (any thread) --------------------------------------------------------

    def request_stop(self, reason: str, within_s: float | None = None) -> None:
        grace = self.deps.settings.stop_grace_s
        self.stop.request(reason, grace if within_s is None else min(grace, within_s))

    def on_spot_notice(self, notice: SpotNotice) -> None:
        within: float | None = None
        if notice.time is not None:
            within = (notice.time - self.deps.now()).total_seconds() - SPOT_SAFETY_S
        self._spot_notice.set()
        self.request_stop("spot_interruption", within)

    def install_signal_handlers(self) -> None:
        """SIGTERM (systemd stop, spot termination) and SIGINT stop like a spot notice."""

        def _handler(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name.lower())

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        deps = self.deps
        settings = deps.settings
        started = deps.clock()
        watchdog = threading.Thread(target=self._watchdog, name="watchdog", daemon=True)
        watchdog.start()
        watcher: SpotWatcher | None = None
        if self._imds is not None:
            watcher = SpotWatcher(self._imds, settings.spot_poll_interval_s, self.on_spot_notice)
            watcher.start()
        self.heartbeat.start()
        code = EXIT_OK
        try:
            self.exit_reason, code = self._loop(started)
        finally:
            self._finished.set()
            if watcher is not None:
                watcher.stop()
            self.heartbeat.close()
            self.progress.close()
        logger.info(
            summary_line(self.stats, self.exit_reason),
            extra={"exit_reason": self.exit_reason, **self.stats.to_dict()},
        )
        if settings.shutdown_on_exit and self.exit_reason in SHUTDOWN_REASONS:
            logger.warning("shutting the machine down", extra={"exit_reason": self.exit_reason})
            deps.shutdown()
        return code

    def _loop(self, started: float) -> tuple[str, int]:
        deps = self.deps
        settings = deps.settings
        idle_since: float | None = None
        failures = 0
        while True:
            if self.stop.requested:
                return self.stop.reason or "stopped", EXIT_OK
            poll_started = deps.clock()
            if poll_started - started >= settings.max_runtime_s:
                self.request_stop("deadline")
                return "deadline", EXIT_OK
            try:
                received = deps.queue.receive(
                    settings.worker_batch_size, settings.wait_time_s, settings.visibility_timeout_s
                )
            except QueueError as exc:
                failures += 1
                if failures >= MAX_RECEIVE_FAILURES:
                    logger.error("giving up after %d failed receives: %s", failures, exc)
                    return "queue_error", EXIT_ERROR
                wait = float(2 ** (failures - 1))
                logger.warning("receive failed, retrying in %.0f s: %s", wait, exc)
                deps.sleep(wait)
                continue
            failures = 0
            if not received:
                idle_since = poll_started if idle_since is None else idle_since
                if deps.clock() - idle_since >= settings.idle_exit_s:
                    return "idle", EXIT_OK
                continue
            idle_since = None
            if self.stop.requested:
                # The notice came during the long poll: hand these straight back.
                self.heartbeat.track(received)
                self.heartbeat.set_visibility(received, 0, "stopping")
                self.stats.released += len(received)
                continue
            self.processor.process(received)
            self.progress.update(self.stats, deps.queue.depth())

    def _watchdog(self) -> None:
        """The last resort when the main thread hangs past the deadline or past a stop's
        grace (a spot notice, SIGTERM): release the in-flight messages, power off if
        configured, and end the process — after a spot notice before EC2 ends it (P14)."""
        settings = self.deps.settings
        deadline = time.monotonic() + settings.max_runtime_s
        while not self.stop.requested:
            left = deadline - time.monotonic()
            if left <= 0:
                self.request_stop("deadline")
                break
            if self._finished.wait(min(_WATCHDOG_TICK_S, left)):
                return
        stopped_at = time.monotonic()
        while True:
            # Re-read each tick: a spot notice after a SIGTERM brings the exit forward.
            slack = self._watchdog_slack_s
            if self._spot_notice.is_set():
                slack = min(slack, SPOT_EXIT_SLACK_S)
            release_at = self.stop.release_at
            if release_at is None:
                release_at = stopped_at + settings.stop_grace_s
            left = release_at + slack - time.monotonic()
            if left <= 0:
                break
            if self._finished.wait(min(_WATCHDOG_TICK_S, left)):
                return
        logger.critical("worker still busy past its hard deadline: forcing exit")
        self.heartbeat.release_all("hard deadline")
        if settings.shutdown_on_exit:
            self.deps.shutdown()
        self._hard_exit(EXIT_HARD_DEADLINE)
