"""The queue drainer: queued chunks transcribed by the server whenever it has spare capacity.

docs/design.md §1 promises queued chunks are processed "when the server starts or during
scheduled batch runs": with QUEUE_URL set (DRAIN_ENABLED, on by default) the server does not
leave them for midnight. One daemon thread, started once the model is loaded:

- it receives (up to DRAIN_BATCH_SIZE messages) only when no direct request is waiting,
  decoding or being transcribed;
- the batch goes through the very same queue rules and chunk job as the batch worker
  (:class:`batch_worker.batch.BatchProcessor`: skip if transcribed, create-only write, stitch,
  delete only after the write, heartbeat, poison to the DLQ with ``Chunk Failed``,
  ``Session Transcribed`` from the stitch winner), so worker and drainer can drain one queue
  together: SQS visibility gives each message to one of them at a time;
- its audio goes to the inference thread as queued work, run in batches of its own only when
  no direct request waits (a direct request waits behind at most one queued batch), and it
  never counts towards /health's busy bounds.

On shutdown the batch in work may finish for ``STOP_GRACE_S``; what is left is handed back to
the queue (visibility 0) for the next consumer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

from batch_worker.batch import BatchProcessor, QueueRules
from batch_worker.errors import QueueError
from batch_worker.heartbeat import Heartbeat, StopControl
from batch_worker.progress import WorkerStats
from batch_worker.queue import ReceivedMessage, WorkQueue
from chunk_job import ChunkJob
from notifications import build_notifier
from notifications.session_events import SessionEvents
from server.chunk_jobs import server_chunk_job
from server.inference import InferenceWorker
from server.settings import ServerSettings

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from server.runtime import Runtime
    from whisper_engine.errors import WhisperEngineError
    from whisper_engine.results import TranscriptionResult

logger = logging.getLogger(__name__)

# How long a queued batch in work may finish after a shutdown starts; then it is handed back.
STOP_GRACE_S: Final = 5.0
# How often the drainer looks again while direct requests keep the server busy.
IDLE_POLL_S: Final = 0.05
# Back-off after failed receives: 1, 2, 4 ... seconds, at most this.
MAX_RECEIVE_BACKOFF_S: Final = 60.0


class Drainer:
    """The drain loop on its own thread; ``start`` once the inference worker runs."""

    def __init__(
        self,
        settings: ServerSettings,
        queue: WorkQueue,
        job: ChunkJob,
        inference: InferenceWorker,
        *,
        events: SessionEvents | None = None,
        idle_poll_s: float = IDLE_POLL_S,
        after_stop: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.inference = inference
        self.control = StopControl()
        self.heartbeat = Heartbeat(
            queue,
            visibility_timeout_s=settings.visibility_timeout_s,
            interval_s=settings.heartbeat_interval_s,
            stop=self.control,
        )
        self.stats = WorkerStats()
        rules = QueueRules(
            allowed_buckets=tuple(settings.allowed_buckets),
            buckets_named="in ALLOWED_BUCKETS",
            retry_delay_s=settings.retry_delay_s,
        )
        self._inference_s = 0.0
        self.processor = BatchProcessor(
            job,
            queue,
            self._transcribe,
            rules,
            self.heartbeat,
            self.control,
            events=events,
            stats=self.stats,
        )
        self._idle_poll_s = idle_poll_s
        self._after_stop = after_stop
        self._thread = threading.Thread(target=self._run, name="queue-drainer", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self.heartbeat.start()
        self._thread.start()
        logger.info("queue drainer started", extra={"queue_url": self.queue.url})

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop receiving; the batch in work may finish within ``grace_s``, then whatever is
        still in flight goes back to the queue at once."""
        self.control.request("server stopping", grace_s)
        if self._thread.is_alive():
            # A receive in progress returns within DRAIN_WAIT_TIME_S.
            self._thread.join(grace_s + self.settings.drain_wait_time_s + 1.0)
        self.heartbeat.release_all("server stopping")
        self.heartbeat.close()
        if self._after_stop is not None:
            self._after_stop()

    def _run(self) -> None:
        failures = 0
        while not self.control.requested:
            if not self.inference.alive:
                # No inference thread to run queued work: never receive what nobody can do.
                self.control.wait(1.0)
                continue
            if not self.inference.direct_idle:
                # Direct requests first: take queued work only when none is waiting.
                self.control.wait(self._idle_poll_s)
                continue
            try:
                received = self.queue.receive(
                    self.settings.drain_batch_size,
                    self.settings.drain_wait_time_s,
                    self.settings.visibility_timeout_s,
                )
            except QueueError as exc:
                failures += 1
                wait = min(MAX_RECEIVE_BACKOFF_S, 2.0 ** (failures - 1))
                logger.warning("drainer receive failed, retrying in %.0f s: %s", wait, exc)
                self.control.wait(wait)
                continue
            failures = 0
            if not received:
                continue
            if self.control.requested:
                # Stopping during the long poll: hand these straight back.
                self.heartbeat.track(received)
                self.heartbeat.set_visibility(received, 0, "stopping")
                break
            self._process(received)

    def _transcribe(
        self, audios: Sequence[NDArray[np.float32]], languages: Sequence[str | None]
    ) -> list[TranscriptionResult | WhisperEngineError]:
        """The inference thread's queued work, timed (what a direct request may wait behind)."""
        started = time.perf_counter()
        try:
            return self.inference.transcribe_queued(audios, languages)
        finally:
            self._inference_s = time.perf_counter() - started

    def _process(self, received: list[ReceivedMessage]) -> None:
        started = time.perf_counter()
        self._inference_s = 0.0
        try:
            self.processor.process(received)
        except Exception:
            # A bug or an engine crash must not end the drainer, nor the server: the
            # traceback is logged and the batch's messages come back after RETRY_DELAY_S
            # (and reach the DLQ if it keeps happening).
            logger.exception("drainer batch failed")
            self.heartbeat.set_visibility(
                self.heartbeat.in_flight(), self.settings.retry_delay_s, "drainer batch failed"
            )
            return
        logger.info(
            "drained a batch of %d in %.2f s, %.2f s of it in inference",
            len(received),
            time.perf_counter() - started,
            self._inference_s,
            extra={"drainer": self.stats.to_dict()},
        )


def build_drainer(runtime: Runtime) -> Drainer | None:
    """The drainer the settings ask for (None when QUEUE_URL is unset or DRAIN_ENABLED is
    false), with its SQS client, the runtime's S3 client and a notifier."""
    settings = runtime.settings
    worker = runtime.worker
    if not settings.drains or worker is None or settings.queue_url is None:
        return None
    import boto3
    from botocore.config import Config

    # The long poll needs a read timeout above DRAIN_WAIT_TIME_S.
    config = Config(
        connect_timeout=5,
        read_timeout=settings.drain_wait_time_s + 10,
        retries={"max_attempts": 5, "mode": "standard"},
    )
    # Webhooks go out on their own threads: a slow receiver never holds up the queue.
    deliveries = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notify")
    notifier = build_notifier(
        settings,
        bucket=settings.allowed_buckets[0],
        layout=settings.layout,
        s3=runtime.s3,
        events=lambda: boto3.client("events", config=config),
        ssm=lambda: boto3.client("ssm", config=config),
        executor=deliveries,
    )

    def close_notifier() -> None:
        notifier.wait_for_deliveries(timeout_s=STOP_GRACE_S)
        deliveries.shutdown(wait=False, cancel_futures=True)

    queue = WorkQueue(boto3.client("sqs", config=config), settings.queue_url)
    return Drainer(
        settings, queue, drainer_job(runtime), worker, events=notifier, after_stop=close_notifier
    )


def drainer_job(runtime: Runtime) -> ChunkJob:
    """The chunk job as the drainer runs it: the server's limits and S3 client."""
    return server_chunk_job(runtime, "server-drainer")
