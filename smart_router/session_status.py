"""Where a session stands, from S3 and the queues alone (``smart-router status``).

Per chunk, one state:

- ``transcribed``: its chunk transcript exists (``transcribed_by`` says which path wrote it:
  ``server-direct``, ``server-drainer`` or ``worker``; None for documents older than the field);
- ``failed``: it was given up on: a ``Chunk Failed`` record under ``failures/`` (its reason) or
  its work message in the dead-letter queue (after ``maxReceiveCount`` receives);
- ``queued``: its audio is uploaded and nothing is written yet: waiting in the work queue or in
  work (router forward or worker);
- ``missing``: neither audio nor transcript (a chunk the manifest counts, or a gap below the
  highest index seen, has not been uploaded).

Queues are read by :mod:`smart_router.status_queues` without hiding work from the worker.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from notifications.models import ChunkFailedDetail, DeliveryFailureRecord
from notifications.records import (
    ChunkFailureName,
    DeliveryFailureName,
    failures_prefix,
    parse_failure_name,
)
from smart_router.errors import StatusError
from smart_router.status_queues import QueueStatus, peek_dead_letters, queue_counts
from transcript_contracts.errors import KeyGrammarError
from transcript_contracts.keys import (
    AudioChunkKey,
    ChunkTranscriptKey,
    KeyLayout,
    SessionTranscriptKey,
)
from transcript_contracts.models import Manifest
from transcript_store import (
    InvalidDocumentError,
    StorageError,
    TranscriptStore,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

ChunkState = Literal["transcribed", "queued", "failed", "missing"]
MAX_RECORD_BYTES: Final = 1024 * 1024
# Chunk transcripts are read (for who wrote them) this many at a time.
TRANSCRIPT_READERS: Final = 8


@dataclass
class ChunkStatus:
    index: int
    state: ChunkState
    reason: str | None = None
    audio_key: str | None = None
    transcript_key: str | None = None
    beyond_manifest: bool = False
    transcribed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "state": self.state,
            "reason": self.reason,
            "audio_key": self.audio_key,
            "transcript_key": self.transcript_key,
            "beyond_manifest": self.beyond_manifest,
            "transcribed_by": self.transcribed_by,
        }


@dataclass
class SessionStatus:
    session_id: str
    bucket: str
    manifest_present: bool = False
    manifest_error: str | None = None
    chunk_count: int | None = None
    language: str | None = None
    stitched: bool = False
    session_keys: list[str] = field(default_factory=list)
    chunks: list[ChunkStatus] = field(default_factory=list)
    work_queue: QueueStatus | None = None
    dead_letter_queue: QueueStatus | None = None
    delivery_failures: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"transcribed": 0, "queued": 0, "failed": 0, "missing": 0}
        for chunk in self.chunks:
            counts[chunk.state] += 1
        return counts

    def transcribed_by(self) -> dict[str, int]:
        """Transcribed chunks per path (``server-drainer``: drained by the server);
        ``unknown`` for transcripts that do not say."""
        counts: dict[str, int] = {}
        for chunk in self.chunks:
            if chunk.state == "transcribed":
                by = chunk.transcribed_by or "unknown"
                counts[by] = counts.get(by, 0) + 1
        return counts

    @property
    def found(self) -> bool:
        return self.manifest_present or self.manifest_error is not None or bool(self.chunks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "bucket": self.bucket,
            "manifest": {
                "present": self.manifest_present,
                "chunk_count": self.chunk_count,
                "language": self.language,
                "error": self.manifest_error,
            },
            "stitched": self.stitched,
            "session_keys": self.session_keys,
            "counts": self.counts(),
            "transcribed_by": self.transcribed_by(),
            "chunks": [c.to_dict() for c in self.chunks],
            "work_queue": self.work_queue.to_dict() if self.work_queue else None,
            "dead_letter_queue": (
                self.dead_letter_queue.to_dict() if self.dead_letter_queue else None
            ),
            "delivery_failures": self.delivery_failures,
        }


@dataclass
class _Found:
    audio: dict[int, str] = field(default_factory=dict)
    transcripts: dict[int, str] = field(default_factory=dict)
    session_keys: list[str] = field(default_factory=list)
    failure_records: dict[int, str] = field(default_factory=dict)
    delivery_records: list[str] = field(default_factory=list)


def collect_status(
    session_id: str,
    *,
    bucket: str,
    layout: KeyLayout,
    s3: S3Client,
    sqs: SQSClient | None = None,
    queue_url: str | None = None,
    dlq_url: str | None = None,
    dlq_limit: int = 200,
    dlq_wait_s: int = 1,
) -> SessionStatus:
    """Read everything known about the session. Raises StatusError when S3 cannot be read;
    queue problems are reported in the queue's ``error`` instead (S3 alone still tells a lot).
    """
    store = TranscriptStore(s3)
    status = SessionStatus(session_id=session_id, bucket=bucket)
    try:
        manifest = store.load_manifest(bucket, session_id, layout)
    except InvalidDocumentError as exc:
        manifest = None
        status.manifest_error = exc.reason
    except StorageError as exc:
        raise StatusError(str(exc)) from exc
    if manifest is not None:
        status.manifest_present = True
        status.chunk_count = manifest.chunk_count
        status.language = manifest.language

    found = _list_session(s3, bucket, session_id, layout)
    status.session_keys = sorted(found.session_keys)
    status.stitched = layout.session_transcript(session_id, "json") in found.session_keys
    reasons = {
        index: _chunk_failure_reason(store, bucket, key)
        for index, key in found.failure_records.items()
    }
    status.delivery_failures = [_delivery_failure(store, bucket, k) for k in found.delivery_records]

    if sqs is not None and queue_url:
        status.work_queue = queue_counts(sqs, queue_url)
    dlq_failed: dict[int, str] = {}
    if sqs is not None and dlq_url:
        status.dead_letter_queue, dlq_failed = peek_dead_letters(
            sqs, dlq_url, bucket, session_id, limit=dlq_limit, wait_s=dlq_wait_s
        )

    status.chunks = _chunk_states(manifest, found, reasons, dlq_failed)
    writers = _writers(store, bucket, session_id, layout, sorted(found.transcripts))
    for chunk in status.chunks:
        chunk.transcribed_by = writers.get(chunk.index)
    return status


def _writers(
    store: TranscriptStore, bucket: str, session_id: str, layout: KeyLayout, indices: list[int]
) -> dict[int, str | None]:
    """Who wrote each chunk transcript (its ``transcribed_by``), read a few at a time; an
    unreadable one is logged and counted as not saying."""

    def read(index: int) -> str | None:
        try:
            transcript = store.load_chunk_transcript(bucket, session_id, index, layout)
        except (StorageError, InvalidDocumentError) as exc:
            logger.warning("chunk transcript unreadable: %s", exc)
            return None
        return transcript.transcribed_by if transcript is not None else None

    if not indices:
        return {}
    with ThreadPoolExecutor(min(TRANSCRIPT_READERS, len(indices))) as pool:
        return dict(zip(indices, pool.map(read, indices), strict=True))


def _list_session(s3: S3Client, bucket: str, session_id: str, layout: KeyLayout) -> _Found:
    found = _Found()
    failures = failures_prefix(layout, session_id)
    for prefix in (
        layout.audio_session_prefix(session_id),
        layout.transcript_session_prefix(session_id),
    ):
        for key in _list_keys(s3, bucket, prefix):
            if key.startswith(failures):
                name = parse_failure_name(key[len(failures) :])
                if isinstance(name, ChunkFailureName):
                    found.failure_records[name.index] = key
                elif isinstance(name, DeliveryFailureName):
                    found.delivery_records.append(key)
                continue
            try:
                parsed = layout.parse(key)
            except KeyGrammarError:
                continue
            if parsed.session_id != session_id:
                continue
            if isinstance(parsed, AudioChunkKey):
                # Two uploads of one index (chunk-3.mp3, chunk-0003.wav): the first listed wins.
                found.audio.setdefault(parsed.index, key)
            elif isinstance(parsed, ChunkTranscriptKey):
                found.transcripts[parsed.index] = key
            elif isinstance(parsed, SessionTranscriptKey):
                found.session_keys.append(key)
    return found


def _list_keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []) if "Key" in item)
    except (ClientError, BotoCoreError) as exc:
        raise StatusError(f"listing s3://{bucket}/{prefix} failed: {exc}") from exc
    return keys


def _read_record(store: TranscriptStore, bucket: str, key: str) -> bytes | None:
    try:
        return store.get_bytes(bucket, key, max_bytes=MAX_RECORD_BYTES)
    except (StorageError, InvalidDocumentError) as exc:
        logger.warning("record unreadable: %s", exc)
        return None


def _chunk_failure_reason(store: TranscriptStore, bucket: str, key: str) -> str:
    data = _read_record(store, bucket, key)
    if data is None:
        return f"Chunk Failed record unreadable (s3://{bucket}/{key})"
    try:
        return ChunkFailedDetail.model_validate_json(data).reason
    except ValidationError:
        return f"Chunk Failed record invalid (s3://{bucket}/{key})"


def _delivery_failure(store: TranscriptStore, bucket: str, key: str) -> dict[str, Any]:
    data = _read_record(store, bucket, key)
    try:
        record = DeliveryFailureRecord.model_validate_json(data or b"")
    except ValidationError:
        return {"key": key, "error": "record unreadable or invalid"}
    return {
        "key": key,
        "detail_type": record.detail_type,
        "target": record.target,
        "destination": record.destination,
        "attempts": record.attempts,
        "error": record.error,
        "occurred_at": record.occurred_at.isoformat(),
    }


def _chunk_states(
    manifest: Manifest | None,
    found: _Found,
    reasons: dict[int, str],
    dlq_failed: dict[int, str],
) -> list[ChunkStatus]:
    known = set(found.audio) | set(found.transcripts) | set(reasons) | set(dlq_failed)
    if manifest is not None:
        indices = set(range(manifest.chunk_count)) | known
    else:
        # Without a manifest the count is unknown: gaps below the highest index are missing.
        indices = set(range(max(known) + 1)) if known else set()
    chunks: list[ChunkStatus] = []
    for index in sorted(indices):
        chunk = ChunkStatus(
            index=index,
            state="missing",
            audio_key=found.audio.get(index),
            transcript_key=found.transcripts.get(index),
            beyond_manifest=manifest is not None and index >= manifest.chunk_count,
        )
        if index in found.transcripts:
            chunk.state = "transcribed"
        elif index in reasons or index in dlq_failed:
            chunk.state = "failed"
            chunk.reason = "; ".join(r for r in (reasons.get(index), dlq_failed.get(index)) if r)
        elif index in found.audio:
            chunk.state = "queued"
            chunk.reason = "uploaded, waiting for transcription (work queue or in work)"
        else:
            chunk.reason = "no audio uploaded"
        chunks.append(chunk)
    return chunks


def status_json(status: SessionStatus) -> str:
    return json.dumps(status.to_dict(), indent=2, sort_keys=False)
