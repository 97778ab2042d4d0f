"""The notifier: what the router and the worker call when a session is stitched or a chunk is
given up on. It publishes the EventBridge event, delivers the webhooks and records what could
not be delivered; it never raises into the transcription path (every failure it expects is
caught by type, logged and recorded, see :mod:`notifications.records`).

Exactly one ``Session Transcribed`` per session: :meth:`Notifier.session_stitched` publishes only
for the outcome ``"stitched"``, which only the writer that won the create-only write of
``session.json`` gets (P8).

Webhooks run in the caller's thread unless an executor is given: the router Lambda delivers
before it returns (a frozen Lambda would never finish a background delivery); the worker may pass
an executor so that a slow receiver never holds up the next chunk, and call
:meth:`Notifier.wait_for_deliveries` before it exits.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from notifications.errors import EventPublishError, SecretError, WebhookError
from notifications.event_publisher import EventPublisher
from notifications.models import (
    CHUNK_FAILED,
    SESSION_TRANSCRIBED,
    ChunkFailedDetail,
    DeliveryFailureRecord,
    DeliveryTarget,
    DetailType,
    NotificationDetail,
    SessionTranscribedDetail,
    TranscriptKeys,
)
from notifications.records import chunk_failure_key, delivery_failure_key
from notifications.webhooks import (
    WebhookSecretSource,
    WebhookSender,
    describe_destination,
)
from transcript_contracts.errors import KeyGrammarError
from transcript_contracts.keys import AudioChunkKey, KeyLayout
from transcript_contracts.models import Manifest, SessionTranscript, utc_now
from transcript_store import StitchOutcome, TranscriptStore, TranscriptStoreError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

MAX_SESSION_JSON_BYTES = 256 * 1024 * 1024


class Notifier:
    """Events on EventBridge, signed webhooks, failure records in S3; clients injected.

    ``bucket``: the deployment's bucket (a StitchOutcome does not name one); ``webhooks`` and
    ``secret``: None turns webhooks off (no signing key configured); ``webhook_url``: the global
    webhook; ``executor``: run webhook deliveries there instead of in the caller's thread.
    """

    def __init__(
        self,
        *,
        bucket: str,
        layout: KeyLayout,
        s3: S3Client,
        publisher: EventPublisher,
        webhooks: WebhookSender | None = None,
        secret: WebhookSecretSource | None = None,
        webhook_url: str | None = None,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._bucket = bucket
        self._layout = layout
        self._s3 = s3
        self._store = TranscriptStore(s3)
        self._publisher = publisher
        self._webhooks = webhooks if secret is not None else None
        self._secret = secret
        self._webhook_url = webhook_url
        self._executor = executor
        self._clock = clock
        self._new_id = new_id
        self._pending: set[Future[None]] = set()
        self._pending_lock = threading.Lock()

    # -- the seam --------------------------------------------------------------------------

    def session_stitched(
        self, outcome: StitchOutcome, *, bucket: str | None = None, manifest: Manifest | None = None
    ) -> None:
        """Publish ``Session Transcribed`` if this outcome is the one winning write; otherwise
        nothing. ``manifest``: the session's manifest if the caller has it (saves a GET)."""
        if outcome.status != "stitched":
            return
        bucket = bucket or self._bucket
        try:
            detail = self._session_detail(bucket, outcome.session_id)
        except (TranscriptStoreError, ValidationError) as exc:
            logger.error(
                "no Session Transcribed event: the session transcript is unreadable: %s",
                exc,
                extra={"session_id": outcome.session_id},
            )
            return
        self._notify(bucket, SESSION_TRANSCRIBED, detail, manifest)

    def chunk_failed(self, bucket: str, key: str, reason: str) -> None:
        """Publish ``Chunk Failed`` for the audio chunk ``key`` and record the reason next to
        the session's transcripts (``smart-router status`` shows it).

        The worker calls this on every receive that fails (up to the queue's maxReceiveCount):
        one event per version (ETag) of the audio, the first time; later calls for the same
        version publish nothing. A re-uploaded chunk that fails again is a new event.
        """
        chunk = self._parse_chunk(key)
        etag = self._audio_etag(bucket, key) if chunk is not None else None
        detail = ChunkFailedDetail(
            event_id=self._new_id(),
            session_id=chunk.session_id if chunk else None,
            chunk_index=chunk.index if chunk else None,
            bucket=bucket,
            key=key[:1024],
            etag=etag,
            reason=reason,
            occurred_at=self._clock(),
        )
        if chunk is not None and not self._first_failure(bucket, chunk, detail):
            logger.info(
                "Chunk Failed already published for this version of the audio",
                extra={"session_id": chunk.session_id, "chunk_index": chunk.index},
            )
            return
        self._notify(bucket, CHUNK_FAILED, detail, None)

    def wait_for_deliveries(self, timeout_s: float | None = None) -> int:
        """Wait for webhook deliveries still running on the executor; how many are left."""
        with self._pending_lock:
            pending = set(self._pending)
        if not pending:
            return 0
        _, not_done = wait(pending, timeout=timeout_s)
        return len(not_done)

    # -- building the details --------------------------------------------------------------

    def _session_detail(self, bucket: str, session_id: str) -> SessionTranscribedDetail:
        json_key = self._layout.session_transcript(session_id, "json")
        data = self._store.get_bytes(bucket, json_key, max_bytes=MAX_SESSION_JSON_BYTES)
        if data is None:
            raise TranscriptStoreError(f"s3://{bucket}/{json_key} is gone")
        session = SessionTranscript.model_validate_json(data)
        return SessionTranscribedDetail(
            event_id=self._new_id(),
            session_id=session_id,
            bucket=bucket,
            transcript_keys=TranscriptKeys(
                json_key=json_key,
                txt=self._layout.session_transcript(session_id, "txt"),
                srt=self._layout.session_transcript(session_id, "srt"),
                vtt=self._layout.session_transcript(session_id, "vtt"),
            ),
            chunk_count=session.chunk_count,
            duration_s=session.duration_s,
            language=session.language,
            model=",".join(session.models),
            models=list(session.models),
            occurred_at=self._clock(),
        )

    def _audio_etag(self, bucket: str, key: str) -> str | None:
        try:
            return self._store.object_etag(bucket, key)
        except TranscriptStoreError as exc:
            logger.warning("failed chunk's ETag unreadable: %s", exc)
            return None

    def _first_failure(self, bucket: str, chunk: AudioChunkKey, detail: ChunkFailedDetail) -> bool:
        """Record the failure; False when this version of the audio was already recorded.
        Unreadable records count as absent: a duplicate event beats a lost one."""
        key = chunk_failure_key(self._layout, chunk.session_id, chunk.index)
        body = detail.model_dump_json().encode()
        try:
            data = self._store.get_bytes(bucket, key, max_bytes=1024 * 1024)
            if data is None:
                # Create-only: of two workers failing the same chunk at once, one publishes.
                return self._store.put_create_only(bucket, key, body, "application/json")
        except TranscriptStoreError as exc:
            logger.warning("failure record unreadable or unwritable: %s", exc)
            return True
        try:
            previous = ChunkFailedDetail.model_validate_json(data)
        except ValidationError:
            previous = None
        if previous is not None and previous.etag == detail.etag:
            return False
        self._put_record(bucket, key, body)
        return True

    def _parse_chunk(self, key: str) -> AudioChunkKey | None:
        try:
            return self._layout.parse_audio_chunk(key)
        except KeyGrammarError as exc:
            logger.warning("failed chunk's key is outside the grammar: %s", exc.reason)
            return None

    # -- delivering ------------------------------------------------------------------------

    def _notify(
        self,
        bucket: str,
        detail_type: DetailType,
        detail: NotificationDetail,
        manifest: Manifest | None,
    ) -> None:
        try:
            self._publisher.publish(detail_type, detail)
        except EventPublishError as exc:
            logger.error(
                "%s event not published: %s",
                detail_type,
                exc,
                extra={"session_id": detail.session_id, "event_id": detail.event_id},
            )
            self._record_failure(
                bucket, detail_type, detail, "eventbridge", self._publisher.bus_name, 1, str(exc)
            )
        for target, url in self._webhook_targets(bucket, detail.session_id, manifest):
            if self._executor is None:
                self._deliver(bucket, detail_type, detail, target, url)
                continue
            future = self._executor.submit(self._deliver, bucket, detail_type, detail, target, url)
            with self._pending_lock:
                self._pending.add(future)
            future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._pending_lock:
            self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            # A bug, not a delivery failure (those are caught by type in _deliver).
            logger.error("webhook delivery crashed", exc_info=future.exception())

    def _webhook_targets(
        self, bucket: str, session_id: str | None, manifest: Manifest | None
    ) -> list[tuple[DeliveryTarget, str]]:
        if self._webhooks is None:
            if manifest is not None and manifest.callback_url:
                logger.warning(
                    "the manifest's callback_url is not used: no webhook signing key is set "
                    "(WEBHOOK_SECRET or WEBHOOK_SECRET_PARAMETER)",
                    extra={"session_id": session_id},
                )
            return []
        targets: list[tuple[DeliveryTarget, str]] = []
        if self._webhook_url:
            targets.append(("webhook", self._webhook_url))
        if session_id is not None:
            if manifest is None:
                manifest = self._load_manifest(bucket, session_id)
            callback = manifest.callback_url if manifest else None
            if callback and callback != self._webhook_url:
                targets.append(("callback", callback))
        return targets

    def _load_manifest(self, bucket: str, session_id: str) -> Manifest | None:
        try:
            return self._store.load_manifest(bucket, session_id, self._layout)
        except TranscriptStoreError as exc:
            logger.warning(
                "manifest unreadable, its callback_url is not used: %s",
                exc,
                extra={"session_id": session_id},
            )
            return None

    def _deliver(
        self,
        bucket: str,
        detail_type: DetailType,
        detail: NotificationDetail,
        target: DeliveryTarget,
        url: str,
    ) -> None:
        sender, secret_source = self._webhooks, self._secret
        if sender is None or secret_source is None:
            return
        body = detail.model_dump_json().encode()
        keys = {"session_id": detail.session_id, "event_id": detail.event_id}
        attempts = 0
        try:
            secret = secret_source.get()
            delivery = sender.deliver(
                url, secret=secret, detail_type=detail_type, event_id=detail.event_id, body=body
            )
        except (SecretError, WebhookError) as exc:
            attempts = exc.attempts if isinstance(exc, WebhookError) else 0
            logger.error("%s webhook not delivered: %s", detail_type, exc, extra=keys)
            error = str(exc)
        except Exception as exc:
            # The notifier's boundary: a notification never fails the transcription work that
            # called it (the router's invocation, the worker's chunk). What is not caught by
            # type above is a bug: logged with its traceback and recorded like any failed
            # delivery, as the executor path's crash log does (see _forget).
            logger.exception("%s webhook delivery crashed", detail_type, extra=keys)
            error = f"{type(exc).__name__}: {exc}"
        else:
            logger.info(
                "%s webhook delivered to %s after %d attempt(s)",
                detail_type,
                delivery.destination,
                delivery.attempts,
                extra=keys,
            )
            return
        destination = describe_destination(url)
        self._record_failure(bucket, detail_type, detail, target, destination, attempts, error)

    # -- records ---------------------------------------------------------------------------

    def _record_failure(
        self,
        bucket: str,
        detail_type: DetailType,
        detail: NotificationDetail,
        target: DeliveryTarget,
        destination: str,
        attempts: int,
        error: str,
    ) -> None:
        if detail.session_id is None:
            return  # no session folder to record it in; the log line has it
        record = DeliveryFailureRecord(
            event_id=detail.event_id,
            detail_type=detail_type,
            target=target,
            destination=destination,
            attempts=attempts,
            error=error,
            occurred_at=self._clock(),
            detail=detail,
        )
        key = delivery_failure_key(self._layout, detail.session_id, detail.event_id, target)
        self._put_record(bucket, key, record.model_dump_json().encode())

    def _put_record(self, bucket: str, key: str, body: bytes) -> None:
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        except (ClientError, BotoCoreError) as exc:
            logger.error("failure record not written to s3://%s/%s: %s", bucket, key, exc)
