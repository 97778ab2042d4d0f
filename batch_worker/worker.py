"""The batch worker: drain the SQS queue, transcribe chunks in batches, stitch sessions.

Per message (docs/design.md P7, P8, P10-P14):
validate -> skip if the chunk transcript exists (HEAD) -> download to a temp file -> decode ->
transcribe (the batch's decodable chunks together) -> write the transcript create-only ->
stitch the session if it is now complete -> delete the message.

The message is deleted only after the transcript is durably written *and* the stitch check
ran: a crash in between means redelivery, which skips the transcription and stitches then, so
a session is never left unstitched by a crash. A message whose work fails is never deleted:
it comes back after ``RETRY_DELAY_S`` and reaches the dead-letter queue after the queue's
``maxReceiveCount`` (P12), without holding up the rest of its batch.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Final, Literal, Protocol

from pydantic import ValidationError

from batch_worker import fetch
from batch_worker.errors import ChunkInputError, InvalidMessageError, QueueError
from batch_worker.heartbeat import Heartbeat, StopControl
from batch_worker.progress import LogProgress, ProgressSink, WorkerStats, summary_line
from batch_worker.queue import ReceivedMessage, WorkQueue
from batch_worker.settings import WorkerSettings
from batch_worker.spot import ImdsClient, SpotNotice, SpotWatcher
from batch_worker.transcripts import chunk_transcript
from notifications.session_events import NotificationsOff, SessionEvents
from transcript_contracts.errors import KeyGrammarError, StitchError
from transcript_contracts.keys import KeyLayout
from transcript_contracts.language import is_language_code
from transcript_contracts.models import Manifest, QueueMessage
from transcript_contracts.validation import describe_validation_error
from transcript_store import InvalidDocumentError, StitchOutcome, StorageError, TranscriptStore
from whisper_engine.errors import WhisperEngineError
from whisper_engine.results import TranscriptionResult

if TYPE_CHECKING:
    import numpy as np
    from mypy_boto3_s3 import S3Client
    from numpy.typing import NDArray

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
_DOWNLOAD_THREADS: Final = 4

OutcomeStatus = Literal["transcribed", "skipped", "failed", "invalid", "released"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message. ``deleted``: this worker removed it from the queue."""

    status: OutcomeStatus
    message_id: str
    key: str | None = None
    reason: str | None = None
    audio_s: float = 0.0
    written: bool = False
    deleted: bool = False
    stitch: StitchOutcome | None = None


class BatchTranscriber(Protocol):
    """What the worker needs of the engine (``whisper_engine.WhisperEngine``)."""

    def transcribe_many(
        self,
        audios: Sequence[NDArray[np.float32]],
        *,
        language: str | Sequence[str | None] | None = None,
    ) -> list[TranscriptionResult]: ...


Decoder = Callable[[Path, float], "NDArray[np.float32]"]


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
    decode: Decoder = fetch.decode
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


def parse_message(body: str, settings: WorkerSettings) -> QueueMessage:
    """The work item in ``body``; InvalidMessageError with the reason when it is not one."""
    try:
        message = QueueMessage.model_validate_json(body)
    except ValidationError as exc:
        reasons = describe_validation_error(exc, root="body")
        raise InvalidMessageError(f"not a queue message: {reasons}") from None
    if message.bucket != settings.bucket_name:
        # S3 input only from the configured bucket (P17): never follow a pointer elsewhere.
        raise InvalidMessageError(
            f"bucket {message.bucket!r} is not BUCKET_NAME ({settings.bucket_name!r})"
        )
    try:
        chunk = settings.layout.parse_audio_chunk(message.key)
    except KeyGrammarError as exc:
        raise InvalidMessageError(f"key is not an audio chunk: {exc.reason}") from None
    if chunk.session_id != message.session_id or chunk.index != message.chunk_index:
        raise InvalidMessageError(
            f"key names session {chunk.session_id!r} chunk {chunk.index}, the message says "
            f"session {message.session_id!r} chunk {message.chunk_index}"
        )
    return message


@dataclass
class _Item:
    received: ReceivedMessage
    message: QueueMessage | None = None
    samples: NDArray[np.float32] | None = None
    etag: str = ""
    language: str | None = None
    fetch_s: float = 0.0
    result: TranscriptionResult | None = None
    processing_s: float = 0.0
    written: bool = False
    done: bool = False  # transcript exists (written now or before): ready to stitch + delete
    outcome: Outcome | None = None

    @property
    def key(self) -> str | None:
        return self.message.key if self.message else None


class BatchProcessor:
    """Processes one received batch; the heartbeat renews its messages meanwhile."""

    def __init__(
        self,
        deps: WorkerDeps,
        heartbeat: Heartbeat,
        stop: StopControl,
        stats: WorkerStats | None = None,
    ) -> None:
        self._deps = deps
        self._heartbeat = heartbeat
        self._stop = stop
        self.stats = stats if stats is not None else WorkerStats()

    def process(self, received: Sequence[ReceivedMessage]) -> list[Outcome]:
        started = time.perf_counter()
        items = [_Item(r) for r in received]
        self._heartbeat.track(r for r in received)
        self._validate_and_check(items)
        pending = [i for i in items if i.outcome is None and not i.done]
        if pending:
            manifests = self._manifests({i.message.session_id for i in pending if i.message})
            for item in pending:
                item.language = self._language(item, manifests)
            self._fetch_all(pending)
            self._transcribe([i for i in pending if i.outcome is None])
            self._write([i for i in pending if i.result is not None and i.outcome is None])
        else:
            manifests = {}
        self._stitch_and_delete([i for i in items if i.done and i.outcome is None], manifests)
        outcomes = [i.outcome for i in items if i.outcome is not None]
        self._count(outcomes, time.perf_counter() - started)
        return outcomes

    # -- stages ----------------------------------------------------------------------------

    def _validate_and_check(self, items: list[_Item]) -> None:
        deps = self._deps
        for item in items:
            try:
                item.message = parse_message(item.received.body, deps.settings)
            except InvalidMessageError as exc:
                self._fail(item, "invalid", exc.reason)
                continue
            message = item.message
            transcript_key = deps.layout.chunk_transcript(message.session_id, message.chunk_index)
            try:
                exists = deps.store.transcript_exists(message.bucket, transcript_key)
            except StorageError as exc:
                self._fail(item, "failed", f"transcript HEAD: {exc}")
                continue
            if exists:
                logger.info("transcript already exists: skipped", extra={"s3_key": message.key})
                item.done = True

    def _manifests(self, session_ids: set[str]) -> dict[str, Manifest | None]:
        deps = self._deps
        manifests: dict[str, Manifest | None] = {}
        for session_id in sorted(session_ids):
            try:
                manifests[session_id] = deps.store.load_manifest(
                    deps.settings.bucket_name, session_id, deps.layout
                )
            except (InvalidDocumentError, StorageError) as exc:
                # Only the language comes from it here; the stitch reads it again and reports.
                logger.warning("manifest unusable for the language: %s", exc)
                manifests[session_id] = None
        return manifests

    def _language(self, item: _Item, manifests: dict[str, Manifest | None]) -> str:
        default = self._deps.settings.language
        manifest = manifests.get(item.message.session_id) if item.message else None
        wanted = manifest.language if manifest else None
        if wanted and is_language_code(wanted):
            return wanted
        if wanted:
            logger.warning("manifest language %r ignored, using %s", wanted, default)
        return default

    def _fetch_all(self, items: list[_Item]) -> None:
        with tempfile.TemporaryDirectory(prefix="smart-router-worker-") as tmp:
            directory = Path(tmp)
            with ThreadPoolExecutor(min(_DOWNLOAD_THREADS, len(items))) as pool:
                # list(): re-raises the first unexpected error here (a crash, by design).
                list(pool.map(lambda item: self._fetch(item, directory), items))

    def _fetch(self, item: _Item, directory: Path) -> None:
        if self._stop.requested or item.message is None:
            return
        deps = self._deps
        message = item.message
        started = time.perf_counter()
        try:
            path, etag = fetch.download(
                deps.s3,
                message.bucket,
                message.key,
                deps.settings.max_download_bytes,
                directory,
            )
            try:
                item.samples = deps.decode(path, deps.settings.max_audio_seconds)
            finally:
                path.unlink(missing_ok=True)
        except ChunkInputError as exc:
            self._fail(item, "failed", exc.reason)
            _notify(deps.events.chunk_failed, message.bucket, message.key, exc.reason)
            return
        except StorageError as exc:
            self._fail(item, "failed", str(exc))
            return
        item.etag = etag
        if etag != message.etag:
            logger.info(
                "audio was re-uploaded since it was queued: transcribing the current object",
                extra={"s3_key": message.key, "queued_etag": message.etag, "etag": etag},
            )
        item.fetch_s = time.perf_counter() - started

    def _transcribe(self, items: list[_Item]) -> None:
        if self._stop.requested:
            # Stopping (spot, SIGTERM, deadline): work not started yet goes back to the queue
            # at once, for another worker; only what is already transcribed gets written.
            self._release([i for i in items if i.outcome is None])
            return
        ready = [i for i in items if i.samples is not None]
        if not ready:
            return
        try:
            self._run_engine(ready)
        except WhisperEngineError as exc:
            if len(ready) == 1:
                self._fail(ready[0], "failed", f"transcription failed: {exc}")
                return
            # One bad chunk must not sink the batch: find it by transcribing one at a time.
            logger.warning("batch transcription failed (%s); retrying one by one", exc)
            for item in ready:
                try:
                    self._run_engine([item])
                except WhisperEngineError as single:
                    self._fail(item, "failed", f"transcription failed: {single}")
        for item in ready:
            item.samples = None  # free the audio before the writes

    def _run_engine(self, items: list[_Item]) -> None:
        started = time.perf_counter()
        results = self._deps.engine.transcribe_many(
            [i.samples for i in items if i.samples is not None],
            language=[i.language for i in items],
        )
        if len(results) != len(items):
            raise WhisperEngineError(f"engine returned {len(results)} results for {len(items)}")
        elapsed = time.perf_counter() - started
        total_audio = sum(r.duration_s for r in results) or 1.0
        for item, result in zip(items, results, strict=True):
            item.result = result
            # The batch's time split by audio length, plus the chunk's own download + decode.
            item.processing_s = item.fetch_s + elapsed * result.duration_s / total_audio

    def _write(self, items: list[_Item]) -> None:
        deps = self._deps
        for item in items:
            if item.message is None or item.result is None:
                continue
            transcript = chunk_transcript(
                item.message,
                item.etag,
                item.result,
                processing_s=item.processing_s,
                created_at=deps.now(),
                model_version=deps.model_version,
            )
            try:
                item.written = deps.store.write_chunk_transcript(
                    item.message.bucket, transcript, deps.layout
                )
            except StorageError as exc:
                self._fail(item, "failed", f"transcript write: {exc}")
                continue
            if not item.written:
                logger.info(
                    "transcript was written by someone else meanwhile (412)",
                    extra={"s3_key": item.message.key},
                )
            item.done = True

    def _stitch_and_delete(self, items: list[_Item], manifests: dict[str, Manifest | None]) -> None:
        deps = self._deps
        sessions: dict[str, list[_Item]] = {}
        for item in items:
            if item.message is not None:
                sessions.setdefault(item.message.session_id, []).append(item)
        for session_id, members in sessions.items():
            stitch: StitchOutcome | None = None
            try:
                stitch = deps.store.stitch_session_if_complete(
                    deps.settings.bucket_name,
                    session_id,
                    deps.layout,
                    # Only a manifest that exists is reused: "absent" is re-read after our
                    # writes, or one uploaded meanwhile would leave the session unstitched.
                    manifest=manifests.get(session_id),
                    known_present=[i.message.chunk_index for i in members if i.message],
                )
            except StorageError as exc:
                # Transcripts are written; redelivery skips them and runs the stitch again.
                for item in members:
                    self._fail(item, "failed", f"stitch check: {exc}")
                continue
            except (InvalidDocumentError, StitchError) as exc:
                # A data problem of the session, not of these chunks: their work is done. The
                # manifest's next upload event checks the session again.
                logger.error(
                    "session cannot be stitched: %s", exc, extra={"session_id": session_id}
                )
            if stitch is not None and stitch.status == "stitched":
                self.stats.sessions_stitched += 1
                _notify(deps.events.session_stitched, stitch)
            for item in members:
                self._finish(item, stitch)

    # -- settling one message --------------------------------------------------------------

    def _finish(self, item: _Item, stitch: StitchOutcome | None) -> None:
        deleted = False
        self._heartbeat.untrack(item.received)
        try:
            self._deps.queue.delete(item.received)
            deleted = True
        except QueueError as exc:
            # The transcript exists: a redelivery is skipped by its HEAD. Nothing is lost.
            logger.warning("delete failed, the message will be skipped when it returns: %s", exc)
        status: OutcomeStatus = "transcribed" if item.result is not None else "skipped"
        item.outcome = Outcome(
            status,
            item.received.message_id,
            key=item.key,
            audio_s=item.result.duration_s if item.result else 0.0,
            written=item.written,
            deleted=deleted,
            stitch=stitch,
        )

    def _fail(self, item: _Item, status: OutcomeStatus, reason: str) -> None:
        logger.error(
            "chunk failed, left for redrive: %s",
            reason,
            extra={
                "message_id": item.received.message_id,
                "s3_key": item.key,
                "receive_count": item.received.receive_count,
            },
        )
        self._heartbeat.set_visibility(
            [item.received], self._deps.settings.retry_delay_s, "failed, retry later"
        )
        item.outcome = Outcome(status, item.received.message_id, key=item.key, reason=reason)

    def _release(self, items: list[_Item]) -> None:
        self._heartbeat.set_visibility([i.received for i in items], 0, "stopping")
        for item in items:
            item.outcome = Outcome("released", item.received.message_id, key=item.key)

    def _count(self, outcomes: list[Outcome], elapsed: float) -> None:
        stats = self.stats
        for outcome in outcomes:
            if outcome.status == "transcribed":
                stats.transcribed += 1
                stats.audio_s += outcome.audio_s
            elif outcome.status == "skipped":
                stats.skipped += 1
            elif outcome.status == "released":
                stats.released += 1
            else:
                stats.failed += 1
        stats.busy_s += elapsed


def _notify(call: Callable[..., None], *args: object) -> None:
    """Event sinks are best-effort: a failed notification is logged, the queue goes on."""
    try:
        call(*args)
    except Exception:  # any sink error: logged with its traceback, never swallowed
        logger.exception("worker event sink failed")


def handle(message: ReceivedMessage, deps: WorkerDeps) -> Outcome:
    """Process one message on its own (no heartbeat thread, no stop): the batch of one."""
    stop = StopControl()
    heartbeat = Heartbeat(
        deps.queue,
        visibility_timeout_s=deps.settings.visibility_timeout_s,
        interval_s=deps.settings.heartbeat_interval_s,
        stop=stop,
    )
    [outcome] = BatchProcessor(deps, heartbeat, stop).process([message])
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
        self.processor = BatchProcessor(deps, self.heartbeat, self.stop, self.stats)
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
