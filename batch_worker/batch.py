"""A received batch of work-queue messages through the chunk job, under the queue's rules.

Shared by the batch worker and the server's queue drainer (``server/drainer.py``): both are
consumers of the same queue and follow the same rules (docs/design.md P7, P8, P10-P12, P14):

validate -> skip if the chunk transcript exists (HEAD) -> fetch and decode -> transcribe the
batch's chunks together -> write each create-only -> stitch each touched session if it is now
complete -> delete the message.

A message is deleted only after its transcript is durably written (2xx or 412) *and* the
stitch check ran: a crash in between means redelivery, which skips the transcription and
stitches then. A message whose work fails is never deleted: it comes back after
``RETRY_DELAY_S`` and reaches the dead-letter queue after the queue's ``maxReceiveCount``;
a permanent failure (bad audio) is also told as ``Chunk Failed`` (once per audio version: the
notifier deduplicates). A stop request hands work not yet transcribed straight back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import ValidationError

from batch_worker.errors import InvalidMessageError, QueueError
from batch_worker.heartbeat import Heartbeat, StopControl
from batch_worker.progress import WorkerStats
from batch_worker.queue import ReceivedMessage, WorkQueue
from chunk_job import ChunkJob, ChunkJobError, ChunkRef, Decoded, PermanentChunkError
from chunk_job.engine import Transcribe
from notifications.session_events import NotificationsOff, SessionEvents
from transcript_contracts.errors import KeyGrammarError
from transcript_contracts.keys import KeyLayout
from transcript_contracts.models import Manifest, QueueMessage
from transcript_contracts.validation import describe_validation_error
from transcript_store import StitchOutcome

logger = logging.getLogger(__name__)

# A delete that fails is tried once more at once; after that the redelivery is skipped by its
# HEAD and deleted then (nothing is transcribed twice).
DELETE_ATTEMPTS: Final = 2

OutcomeStatus = Literal["transcribed", "skipped", "failed", "invalid", "released"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message. ``deleted``: this consumer removed it from the queue."""

    status: OutcomeStatus
    message_id: str
    key: str | None = None
    reason: str | None = None
    audio_s: float = 0.0
    written: bool = False
    deleted: bool = False
    stitch: StitchOutcome | None = None


@dataclass(frozen=True, slots=True)
class QueueRules:
    """What a consumer accepts and how it retries. ``buckets_named``: how the allowed buckets
    are named in a refusal (the setting that lists them)."""

    allowed_buckets: Collection[str]
    buckets_named: str
    retry_delay_s: int


def parse_message(body: str, rules: QueueRules, layout: KeyLayout) -> QueueMessage:
    """The work item in ``body``; InvalidMessageError with the reason when it is not one."""
    try:
        message = QueueMessage.model_validate_json(body)
    except ValidationError as exc:
        reasons = describe_validation_error(exc, root="body")
        raise InvalidMessageError(f"not a queue message: {reasons}") from None
    if message.bucket not in rules.allowed_buckets:
        # S3 input only from the configured buckets (P17): never follow a pointer elsewhere.
        raise InvalidMessageError(f"bucket {message.bucket!r} is not {rules.buckets_named}")
    try:
        chunk = layout.parse_audio_chunk(message.key)
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
    ref: ChunkRef | None = None
    language: str | None = None
    decoded: Decoded | None = None
    audio_s: float = 0.0
    transcribed: bool = False
    written: bool = False
    done: bool = False  # the transcript exists (written now or before): stitch, then delete
    outcome: Outcome | None = None

    @property
    def key(self) -> str | None:
        return self.message.key if self.message else None


class BatchProcessor:
    """Processes one received batch; the heartbeat renews its messages meanwhile (P11)."""

    def __init__(
        self,
        job: ChunkJob,
        queue: WorkQueue,
        transcribe: Transcribe,
        rules: QueueRules,
        heartbeat: Heartbeat,
        stop: StopControl,
        *,
        events: SessionEvents | None = None,
        stats: WorkerStats | None = None,
    ) -> None:
        self._job = job
        self._queue = queue
        self._transcribe = transcribe
        self._rules = rules
        self._heartbeat = heartbeat
        self._stop = stop
        self._events: SessionEvents = events if events is not None else NotificationsOff()
        self.stats = stats if stats is not None else WorkerStats()

    def process(self, received: Sequence[ReceivedMessage]) -> list[Outcome]:
        started = time.perf_counter()
        items = [_Item(r) for r in received]
        self._heartbeat.track(received)
        self._validate_and_check(items)
        pending = [i for i in items if i.outcome is None and not i.done]
        manifests = self._manifests([i for i in items if i.outcome is None])
        if pending:
            for item in pending:
                if item.ref is not None:
                    manifest = manifests.get((item.ref.bucket, item.ref.session_id))
                    stated = manifest.language if manifest else None
                    try:
                        item.language = self._job.language_for(
                            item.ref.session_id, stated, bucket=item.ref.bucket
                        )
                    except ChunkJobError as exc:  # the session's record could not be read
                        self._fail(item, "failed", exc.reason)
            self._fetch([i for i in pending if i.outcome is None])
            self._transcribe_and_write([i for i in pending if i.outcome is None])
        self._stitch_and_delete([i for i in items if i.done and i.outcome is None], manifests)
        outcomes = [i.outcome for i in items if i.outcome is not None]
        self._count(outcomes, time.perf_counter() - started)
        return outcomes

    # -- stages ----------------------------------------------------------------------------

    def _validate_and_check(self, items: list[_Item]) -> None:
        for item in items:
            try:
                item.message = parse_message(item.received.body, self._rules, self._job.layout)
            except InvalidMessageError as exc:
                self._fail(item, "invalid", exc.reason)
                continue
            item.ref = ChunkRef(
                item.message.bucket,
                item.message.key,
                item.message.session_id,
                item.message.chunk_index,
            )
            try:
                item.done = self._job.already_transcribed(item.ref)
            except ChunkJobError as exc:
                self._fail(item, "failed", exc.reason)
                continue
            if item.done:
                logger.info("transcript already exists: skipped", extra={"s3_key": item.key})

    def _manifests(self, items: list[_Item]) -> dict[tuple[str, str], Manifest | None]:
        sessions = {(i.ref.bucket, i.ref.session_id) for i in items if i.ref is not None}
        return {(b, s): self._job.manifest(b, s) for b, s in sorted(sessions)}

    def _fetch(self, items: list[_Item]) -> None:
        refs = [i.ref for i in items if i.ref is not None]
        fetched = self._job.fetch_and_decode(refs, stop=lambda: self._stop.requested)
        for item, result in zip(items, fetched, strict=True):
            if isinstance(result, ChunkJobError):
                self._fail(item, "failed", result.reason, permanent=result)
            elif result is not None:
                item.decoded = result
                message = item.message
                if message is not None and result.etag != message.etag:
                    logger.info(
                        "audio was re-uploaded since it was queued: transcribing the current one",
                        extra={"s3_key": message.key, "queued_etag": message.etag},
                    )

    def _transcribe_and_write(self, items: list[_Item]) -> None:
        if self._stop.requested:
            # Stopping (spot, SIGTERM, deadline, server shutdown): work not started yet goes
            # back to the queue at once, for another consumer.
            self._release(items)
            return
        ready = [i for i in items if i.decoded is not None]
        results = self._job.transcribe(
            [i.decoded for i in ready if i.decoded is not None],
            [i.language for i in ready],
            self._transcribe,
        )
        for item, result in zip(ready, results, strict=True):
            item.decoded = None
            if isinstance(result, ChunkJobError):
                self._fail(item, "failed", result.reason, permanent=result)
                continue
            item.transcribed = True
            item.audio_s = result.result.duration_s
            transcript = self._job.build(
                result.ref, result.etag, result.result, result.processing_s, told=item.language
            )
            try:
                item.written = self._job.write(result.ref, transcript)
            except ChunkJobError as exc:
                self._fail(item, "failed", exc.reason)
                continue
            item.done = True

    def _stitch_and_delete(
        self, items: list[_Item], manifests: dict[tuple[str, str], Manifest | None]
    ) -> None:
        sessions: dict[tuple[str, str], list[_Item]] = {}
        for item in items:
            if item.ref is not None:
                sessions.setdefault((item.ref.bucket, item.ref.session_id), []).append(item)
        for (bucket, session_id), members in sessions.items():
            try:
                stitch = self._job.stitch_if_complete(
                    bucket,
                    session_id,
                    manifest=manifests.get((bucket, session_id)),
                    known_present=[i.ref.index for i in members if i.ref is not None],
                )
            except ChunkJobError as exc:
                # The transcripts are written; the redelivery skips them and stitches then.
                for item in members:
                    self._fail(item, "failed", exc.reason)
                continue
            if stitch is not None and stitch.status == "stitched":
                self.stats.sessions_stitched += 1
                _notify(self._events.session_stitched, stitch, bucket=bucket)
            for item in members:
                self._finish(item, stitch)

    # -- settling one message --------------------------------------------------------------

    def _delete(self, item: _Item) -> bool:
        for attempt in range(1, DELETE_ATTEMPTS + 1):
            try:
                self._queue.delete(item.received)
            except QueueError as exc:
                # The transcript exists: a redelivery is skipped by its HEAD. Nothing is lost.
                logger.warning(
                    "delete failed (attempt %d of %d): %s", attempt, DELETE_ATTEMPTS, exc
                )
                continue
            return True
        return False

    def _finish(self, item: _Item, stitch: StitchOutcome | None) -> None:
        self._heartbeat.untrack(item.received)
        deleted = self._delete(item)
        item.outcome = Outcome(
            "transcribed" if item.transcribed else "skipped",
            item.received.message_id,
            key=item.key,
            audio_s=item.audio_s,
            written=item.written,
            deleted=deleted,
            stitch=stitch,
        )

    def _fail(
        self,
        item: _Item,
        status: OutcomeStatus,
        reason: str,
        *,
        permanent: ChunkJobError | None = None,
    ) -> None:
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
            [item.received], self._rules.retry_delay_s, "failed, retry later"
        )
        item.outcome = Outcome(status, item.received.message_id, key=item.key, reason=reason)
        if isinstance(permanent, PermanentChunkError) and item.message is not None:
            # Bad audio: retrying will not help. Said on every receive; the notifier keeps one
            # event per audio version.
            _notify(self._events.chunk_failed, item.message.bucket, item.message.key, reason)

    def _release(self, items: list[_Item]) -> None:
        self._heartbeat.set_visibility([i.received for i in items], 0, "stopping")
        for item in items:
            item.decoded = None
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


def _notify(call: Callable[..., None], *args: object, **kwargs: object) -> None:
    """Event sinks are best-effort: a failed notification is logged, the queue goes on."""
    try:
        call(*args, **kwargs)
    except Exception:  # any sink error: logged with its traceback, never swallowed
        logger.exception("event sink failed")
