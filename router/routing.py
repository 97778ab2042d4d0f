"""What the router does with one object, as plain functions over typed inputs and injected
dependencies (the Lambda handler is only the adapter around them).

Audio chunk: HEAD the transcript (P3) → health check (P6) → POST /transcribe-s3 with backoff
inside the time budget (P5) → on an unhealthy server or exhausted retries, exactly one queue
message (P4). After a direct transcription, and on the manifest's own event, a complete session
is stitched (P8).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

import httpx

from notifications import NotificationsOff, SessionEvents
from router.budget import TimeBudget
from router.errors import ServerLookupError, ServerRejectedError
from router.server_client import ForwardResult, Timeouts, check_health, forward
from router.services import ServerKeySource, ServerLocator, WorkQueueSender
from router.settings import RouterSettings
from transcript_contracts.errors import StitchError
from transcript_contracts.keys import AudioChunkKey, KeyLayout, ManifestKey
from transcript_contracts.language import is_supported_language
from transcript_contracts.models import Manifest, QueueMessage, QueueReason, utc_now
from transcript_store import InvalidDocumentError, StitchOutcome, TranscriptStore
from transcript_store.session_language import LanguageRecords, report_manifest_language

logger = logging.getLogger(__name__)

RouteStatus = Literal["skipped", "forwarded", "queued", "manifest_checked", "ignored", "duplicate"]


# The server's answers that blame the audio: too large, undecodable, too long
# (docs/design.md §4).
AUDIO_REJECTED: Final = frozenset({413, 415, 422})


@dataclass(frozen=True, slots=True)
class RouterDeps:
    """Everything the routing functions touch, injected (fakes and moto in tests)."""

    settings: RouterSettings
    layout: KeyLayout
    store: TranscriptStore
    queue: WorkQueueSender
    http: httpx.Client
    locator: ServerLocator
    api_key: ServerKeySource
    # Runs independent S3 reads side by side (HEAD of the transcript, GET of the manifest).
    pool: Executor
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = utc_now
    # Completion notifications (issue 9): told only of the stitch this invocation won.
    notifier: SessionEvents = field(default_factory=NotificationsOff)

    @property
    def forward_timeouts(self) -> Timeouts:
        return Timeouts(connect=self.settings.connect_timeout_s, read=self.settings.read_timeout_s)


@dataclass(frozen=True, slots=True)
class ChunkObject:
    """One uploaded audio chunk: where it is, which version (etag), and its parsed key."""

    bucket: str
    etag: str
    chunk: AudioChunkKey

    @property
    def key(self) -> str:
        return self.chunk.key

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.chunk.key}"


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    """The invocation's result: small, JSON-able, and what the idempotency record stores."""

    status: RouteStatus
    uri: str | None = None
    etag: str | None = None
    # The queue reason, why the event was ignored, or why it was a duplicate.
    reason: str | None = None
    attempts: int = 0
    message_id: str | None = None
    stitch: StitchOutcome | None = None
    stitch_error: str | None = None
    duplicate: bool = field(default=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "uri": self.uri,
            "etag": self.etag,
            "reason": self.reason,
            "attempts": self.attempts,
            "message_id": self.message_id,
            "stitch": self.stitch.to_dict() if self.stitch else None,
            "stitch_error": self.stitch_error,
            "duplicate": self.duplicate,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouteOutcome:
        stitch = data.get("stitch")
        return cls(
            status=data["status"],
            uri=data.get("uri"),
            etag=data.get("etag"),
            reason=data.get("reason"),
            attempts=int(data.get("attempts", 0)),
            message_id=data.get("message_id"),
            stitch=StitchOutcome.from_dict(stitch) if isinstance(stitch, Mapping) else None,
            stitch_error=data.get("stitch_error"),
            duplicate=bool(data.get("duplicate", False)),
        )


def try_stitch(
    bucket: str,
    session_id: str,
    deps: RouterDeps,
    manifest: Manifest | None = None,
    known_present: tuple[int, ...] = (),
) -> tuple[StitchOutcome | None, str | None]:
    """Stitch the session if it is complete. Bad documents are data problems: logged and
    reported, not retried (a fixed re-upload raises a new event). S3 failures raise.
    ``manifest``: an existing manifest already read (None: read it now); ``known_present``:
    chunk transcripts known to exist (this chunk's, after its forward or skip)."""
    try:
        outcome = deps.store.stitch_session_if_complete(
            bucket, session_id, deps.layout, manifest=manifest, known_present=known_present
        )
    except (InvalidDocumentError, StitchError) as exc:
        logger.error("session cannot be stitched: %s", exc, extra={"session_id": session_id})
        return None, str(exc)
    if outcome.status == "stitched":
        # Only the writer that created session.json gets "stitched": one event per session.
        # The notifier never raises (failed deliveries are logged and recorded).
        deps.notifier.session_stitched(outcome, bucket=bucket, manifest=manifest)
    return outcome, None


def _load_manifest(bucket: str, session_id: str, deps: RouterDeps) -> Manifest | None:
    """The manifest for the forward's language; an invalid one is ignored here (the stitch
    reports it). A ``language`` Whisper does not know is reported once (a create-only record,
    logged at ERROR) and never forwarded: the chunks go on with the server's LANGUAGE."""
    try:
        manifest = deps.store.load_manifest(bucket, session_id, deps.layout)
    except InvalidDocumentError as exc:
        logger.warning("manifest ignored for the language: %s", exc)
        return None
    if manifest is not None:
        records = LanguageRecords(deps.store, bucket, deps.layout)
        report_manifest_language(records, manifest, default="LANGUAGE")
    return manifest


def _forward_language(manifest: Manifest | None) -> str | None:
    """The manifest's language when the server can be told it ("auto" included)."""
    stated = manifest.language if manifest else None
    if stated == "auto" or is_supported_language(stated):
        return stated
    return None


def _enqueue(
    obj: ChunkObject, reason: QueueReason, deps: RouterDeps, *, attempts: int = 0, why: str = ""
) -> RouteOutcome:
    message = QueueMessage(
        bucket=obj.bucket,
        key=obj.key,
        etag=obj.etag,
        session_id=obj.chunk.session_id,
        chunk_index=obj.chunk.index,
        enqueued_at=deps.clock(),
        reason=reason,
    )
    message_id = deps.queue.send(message)
    logger.info(
        "chunk queued: %s", why or reason, extra={"reason": reason, "message_id": message_id}
    )
    return RouteOutcome(
        "queued", obj.uri, obj.etag, reason=reason, attempts=attempts, message_id=message_id
    )


def transcribe_request(obj: ChunkObject, deps: RouterDeps, language: str | None) -> dict[str, Any]:
    """The body of POST /transcribe-s3 (docs/design.md §4)."""
    output_key = deps.layout.transcript_for(obj.chunk)
    body: dict[str, Any] = {
        "s3_input_path": obj.uri,
        "s3_output_path": f"s3://{obj.bucket}/{output_key}",
    }
    if language:
        body["language"] = language
    return body


def _skip(
    obj: ChunkObject, transcript_key: str, deps: RouterDeps, manifest: Manifest | None
) -> RouteOutcome:
    logger.info("transcript already exists: skipped", extra={"transcript": transcript_key})
    # A crash between the transcript and the stitch heals here (create-only, so harmless).
    stitch, stitch_error = try_stitch(
        obj.bucket, obj.chunk.session_id, deps, manifest, (obj.chunk.index,)
    )
    return RouteOutcome("skipped", obj.uri, obj.etag, stitch=stitch, stitch_error=stitch_error)


def route_chunk(obj: ChunkObject, budget: TimeBudget, deps: RouterDeps) -> RouteOutcome:
    """Skip, forward or queue one audio chunk; raises only when the work must be retried."""
    settings = deps.settings
    transcript_key = deps.layout.transcript_for(obj.chunk)
    if settings.force_queue:
        if deps.store.transcript_exists(obj.bucket, transcript_key):
            return _skip(obj, transcript_key, deps, None)
        return _enqueue(obj, "forced", deps, why="FORCE_QUEUE is set")

    # The manifest (the forward's language, the stitch check) is read while the HEAD runs.
    manifest_job = deps.pool.submit(_load_manifest, obj.bucket, obj.chunk.session_id, deps)
    try:
        exists = deps.store.transcript_exists(obj.bucket, transcript_key)
    finally:
        manifest = manifest_job.result()
    if exists:
        return _skip(obj, transcript_key, deps, manifest)

    timeouts = deps.forward_timeouts
    if not budget.fits(settings.health_timeout_s + timeouts.worst_case_s):
        return _enqueue(
            obj,
            "retries_exhausted",
            deps,
            why=f"only {budget.remaining_s():.1f} s left: no time for a forward",
        )
    try:
        base_url = deps.locator.base_url()
    except ServerLookupError as exc:
        return _enqueue(obj, "server_unhealthy", deps, why=str(exc))
    if base_url is None:
        return _enqueue(obj, "server_unhealthy", deps, why="no running transcription server")
    health = check_health(deps.http, base_url, settings.health_timeout_s)
    if not health.healthy:
        return _enqueue(obj, "server_unhealthy", deps, why=health.reason)

    body = transcribe_request(obj, deps, _forward_language(manifest))
    try:
        result: ForwardResult = forward(
            deps.http, base_url, deps.api_key.get(), body, timeouts, budget, deps.sleep
        )
    except ServerRejectedError as exc:
        if exc.status_code in AUDIO_REJECTED:
            # The audio itself is bad: Lambda's retries will fail the same way and the event
            # ends at the on-failure destination. Say so now, once per version (the notifier
            # deduplicates on the etag).
            deps.notifier.chunk_failed(obj.bucket, obj.key, exc.detail)
        raise
    if not result.ok:
        return _enqueue(
            obj,
            "retries_exhausted",
            deps,
            attempts=result.attempts,
            why=f"{result.attempts} attempt(s), last: {result.detail}",
        )
    logger.info("chunk transcribed by the server", extra={"attempts": result.attempts})
    # A manifest read before the forward is reused; an absent one is read again (it may have
    # arrived meanwhile, and its own event may have seen this chunk still missing).
    stitch, stitch_error = try_stitch(
        obj.bucket, obj.chunk.session_id, deps, manifest, (obj.chunk.index,)
    )
    return RouteOutcome(
        "forwarded",
        obj.uri,
        obj.etag,
        attempts=result.attempts,
        stitch=stitch,
        stitch_error=stitch_error,
    )


def handle_manifest(bucket: str, manifest: ManifestKey, deps: RouterDeps) -> RouteOutcome:
    """A manifest arrived: report a language Whisper does not know (once), and if it
    completes the session, stitch it (P8)."""
    # Read and judged here too, so the report does not wait for a chunk; an absent or invalid
    # manifest is read (and reported) again by the stitch.
    loaded = _load_manifest(bucket, manifest.session_id, deps)
    stitch, stitch_error = try_stitch(bucket, manifest.session_id, deps, loaded)
    return RouteOutcome(
        "manifest_checked",
        f"s3://{bucket}/{manifest.key}",
        stitch=stitch,
        stitch_error=stitch_error,
    )
