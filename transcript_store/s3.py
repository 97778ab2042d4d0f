"""Transcript storage on S3 through an injected boto3 client.

- Existence is a HEAD: 200 present, 404 absent, anything else raises :class:`StorageError` (P3).
- Writes of transcripts are create-only (``If-None-Match: *``): 412 means someone else already
  wrote the object, which is success for the caller (P7, P8).
- A session is stitched when its manifest exists and every chunk ``0 … chunk_count-1`` has a
  transcript; session.json and its txt/srt/vtt are each written create-only, all four always
  attempted so a crash between writes heals on the next attempt.

Keys are only ever S3 keys here: never file-system paths, never shell arguments (P9).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ValidationError

from transcript_contracts.errors import KeyGrammarError
from transcript_contracts.formats import MEDIA_TYPES, render
from transcript_contracts.keys import ChunkTranscriptKey, KeyLayout, TranscriptFormat
from transcript_contracts.models import ChunkTranscript, Manifest
from transcript_contracts.stitcher import check_completeness, stitch
from transcript_contracts.validation import describe_validation_error
from transcript_store.errors import InvalidDocumentError, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

R = TypeVar("R")
D = TypeVar("D", bound=BaseModel)

StitchStatus = Literal["stitched", "already_stitched", "incomplete", "no_manifest"]

# session.json first: it is the record that the session is done; the renderings follow.
SESSION_FORMATS: Final[tuple[TranscriptFormat, ...]] = ("json", "txt", "srt", "vtt")
MAX_MANIFEST_BYTES: Final = 1024 * 1024
MAX_CHUNK_TRANSCRIPT_BYTES: Final = 32 * 1024 * 1024
# S3 answers 409 ConditionalRequestConflict while another conditional write to the same key is
# in flight; AWS says retry. Waits before the 2nd, 3rd and 4th try.
CONFLICT_RETRY_WAITS_S: Final[tuple[float, ...]] = (0.1, 0.2, 0.4)
# Results are stored (idempotency records, logs): never let them grow with the session.
MAX_MISSING_SHOWN: Final = 20


@dataclass(frozen=True, slots=True)
class StitchOutcome:
    """What ``stitch_session_if_complete`` did. ``written``: the keys this call created."""

    status: StitchStatus
    session_id: str
    # After a round trip through ``to_dict`` only the first missing indices are kept;
    # ``missing_count`` is the full number, None when the listing was skipped (the last
    # chunk's transcript was absent: ``missing`` then names only that one).
    missing: tuple[int, ...] = ()
    written: tuple[str, ...] = field(default=())
    missing_count: int | None = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able and bounded in size (a session may miss thousands of chunks): the first
        ``MAX_MISSING_SHOWN`` missing indices and their total count."""
        return {
            "status": self.status,
            "session_id": self.session_id,
            "missing": list(self.missing[:MAX_MISSING_SHOWN]),
            "missing_count": self.missing_count,
            "written": list(self.written),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StitchOutcome:
        """Inverse of ``to_dict`` (``missing`` holds at most the indices it kept)."""
        missing = tuple(int(i) for i in data.get("missing", ()))
        count = data.get("missing_count", len(missing))
        return cls(
            status=data["status"],
            session_id=str(data["session_id"]),
            missing=missing,
            written=tuple(str(k) for k in data.get("written", ())),
            missing_count=None if count is None else int(count),
        )


def _error_code_status(exc: ClientError) -> tuple[str, int | None]:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code, status


def _storage_error(
    operation: str, bucket: str, key: str, exc: ClientError | BotoCoreError
) -> StorageError:
    if isinstance(exc, ClientError):
        code, status = _error_code_status(exc)
        return StorageError(operation, bucket, key, code=code, status=status)
    return StorageError(operation, bucket, key, detail=f"{type(exc).__name__}: {exc}")


def _is_not_found(exc: ClientError) -> bool:
    """The key is absent. A missing bucket is a configuration error, never "absent" (a HEAD
    cannot tell the two apart: S3 sends no error code with it)."""
    code, status = _error_code_status(exc)
    if code == "NoSuchBucket":
        return False
    return status == 404 or code in ("404", "NoSuchKey", "NotFound")


def _unless_missing(operation: str, bucket: str, key: str, call: Callable[[], R]) -> R | None:
    """``call()``'s answer; None when the object does not exist (404); any other failure is a
    StorageError, never read as "missing" (P3)."""
    try:
        return call()
    except ClientError as exc:
        if _is_not_found(exc):
            return None
        raise _storage_error(operation, bucket, key, exc) from exc
    except BotoCoreError as exc:
        raise _storage_error(operation, bucket, key, exc) from exc


class TranscriptStore:
    """S3 operations on manifests and transcripts; the client is injected (moto in tests)."""

    def __init__(self, s3: S3Client, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._s3 = s3
        self._sleep = sleep

    # -- single objects --------------------------------------------------------------------

    def object_etag(self, bucket: str, key: str) -> str | None:
        """The object's ETag without quotes, or None when it does not exist (HEAD 404)."""
        head = _unless_missing(
            "HEAD", bucket, key, lambda: self._s3.head_object(Bucket=bucket, Key=key)
        )
        if head is None:
            return None
        return head["ETag"].strip('"')

    def transcript_exists(self, bucket: str, key: str) -> bool:
        """HEAD: 200 True, 404 False, anything else (403 included) raises StorageError (P3)."""
        return self.object_etag(bucket, key) is not None

    def get_bytes(self, bucket: str, key: str, *, max_bytes: int) -> bytes | None:
        """The object's bytes, None when it does not exist; over ``max_bytes`` is invalid."""
        response = _unless_missing(
            "GET", bucket, key, lambda: self._s3.get_object(Bucket=bucket, Key=key)
        )
        if response is None:
            return None
        body = response["Body"]
        try:
            size = response.get("ContentLength")
            if size is not None and size > max_bytes:
                raise InvalidDocumentError(bucket, key, f"{size} bytes, over {max_bytes}")
            data = body.read(max_bytes + 1)
        except BotoCoreError as exc:
            raise _storage_error("GET", bucket, key, exc) from exc
        finally:
            body.close()
        if len(data) > max_bytes:
            raise InvalidDocumentError(bucket, key, f"over {max_bytes} bytes")
        return data

    def put_create_only(self, bucket: str, key: str, body: bytes, content_type: str) -> bool:
        """Write only if absent (``If-None-Match: *``). True: this call created it; False:
        the object already exists (412, someone else wrote it: success for the caller)."""
        waits = iter(CONFLICT_RETRY_WAITS_S)
        while True:
            try:
                self._s3.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*"
                )
            except ClientError as exc:
                code, status = _error_code_status(exc)
                if status == 412 or code == "PreconditionFailed":
                    return False
                if status == 409 or code == "ConditionalRequestConflict":
                    wait = next(waits, None)
                    if wait is not None:
                        logger.info(
                            "conditional write conflict, retrying",
                            extra={"s3_key": key, "wait_s": wait},
                        )
                        self._sleep(wait)
                        continue
                    # Still conflicting: whoever holds the write may have finished by now.
                    if self.object_etag(bucket, key) is not None:
                        return False
                raise _storage_error("PUT", bucket, key, exc) from exc
            except BotoCoreError as exc:
                raise _storage_error("PUT", bucket, key, exc) from exc
            return True

    # -- documents -------------------------------------------------------------------------

    def _load_document(
        self, bucket: str, key: str, model: type[D], max_bytes: int, *, reasons: int
    ) -> D | None:
        """The object parsed as ``model``; None when it does not exist; InvalidDocumentError
        naming the first ``reasons`` problems when it is not one."""
        data = self.get_bytes(bucket, key, max_bytes=max_bytes)
        if data is None:
            return None
        try:
            return model.model_validate_json(data)
        except ValidationError as exc:
            problems = describe_validation_error(exc, root="document", limit=reasons)
            raise InvalidDocumentError(bucket, key, problems) from None

    def load_manifest(self, bucket: str, session_id: str, layout: KeyLayout) -> Manifest | None:
        """The session's manifest, None when there is none yet; invalid → InvalidDocumentError."""
        key = layout.manifest(session_id)
        manifest = self._load_document(bucket, key, Manifest, MAX_MANIFEST_BYTES, reasons=5)
        if manifest is None:
            return None
        if manifest.session_id != session_id:
            raise InvalidDocumentError(
                bucket, key, f"names session {manifest.session_id!r}, not {session_id!r}"
            )
        return manifest

    def list_chunk_transcript_indices(
        self, bucket: str, session_id: str, layout: KeyLayout
    ) -> list[int]:
        """Indices of the session's chunk transcripts (keys outside the grammar are skipped)."""
        prefix = layout.transcript_session_prefix(session_id)
        indices: set[int] = set()
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                for item in page.get("Contents", []):
                    key = item.get("Key", "")
                    try:
                        parsed = layout.parse(key)
                    except KeyGrammarError as exc:
                        logger.debug("skipping key outside the grammar: %s", exc.reason)
                        continue
                    if isinstance(parsed, ChunkTranscriptKey) and parsed.session_id == session_id:
                        indices.add(parsed.index)
        except ClientError as exc:
            raise _storage_error("LIST", bucket, prefix, exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("LIST", bucket, prefix, exc) from exc
        return sorted(indices)

    def load_chunk_transcript(
        self, bucket: str, session_id: str, index: int, layout: KeyLayout
    ) -> ChunkTranscript | None:
        key = layout.chunk_transcript(session_id, index)
        transcript = self._load_document(
            bucket, key, ChunkTranscript, MAX_CHUNK_TRANSCRIPT_BYTES, reasons=1
        )
        if transcript is None:
            return None
        if transcript.session_id != session_id or transcript.chunk_index != index:
            raise InvalidDocumentError(
                bucket,
                key,
                f"holds session {transcript.session_id!r} chunk {transcript.chunk_index}",
            )
        return transcript

    def load_chunk_transcripts(
        self,
        bucket: str,
        session_id: str,
        layout: KeyLayout,
        indices: Iterable[int] | None = None,
    ) -> list[ChunkTranscript]:
        """The chunk transcripts (all listed ones when ``indices`` is None), in index order."""
        wanted = (
            sorted(set(indices))
            if indices is not None
            else self.list_chunk_transcript_indices(bucket, session_id, layout)
        )
        transcripts: list[ChunkTranscript] = []
        for index in wanted:
            transcript = self.load_chunk_transcript(bucket, session_id, index, layout)
            if transcript is None:
                key = layout.chunk_transcript(session_id, index)
                raise StorageError("GET", bucket, key, detail="listed but gone (deleted?)")
            transcripts.append(transcript)
        return transcripts

    def write_chunk_transcript(
        self, bucket: str, transcript: ChunkTranscript, layout: KeyLayout
    ) -> bool:
        """Create-only write of a chunk transcript; False when it already existed (P7)."""
        key = layout.chunk_transcript(transcript.session_id, transcript.chunk_index)
        return self.put_create_only(bucket, key, render(transcript, "json"), MEDIA_TYPES["json"])

    # -- sessions --------------------------------------------------------------------------

    def stitch_session_if_complete(
        self,
        bucket: str,
        session_id: str,
        layout: KeyLayout,
        *,
        manifest: Manifest | None = None,
        known_present: Iterable[int] = (),
    ) -> StitchOutcome:
        """Write session.{json,txt,srt,vtt} create-only when the session is complete (P8).

        ``manifest``: one the caller already read (saves a GET); None reads it now. Pass only
        a manifest that exists: "absent" must be re-checked after the caller's own write, or a
        manifest uploaded in between would leave the session unstitched.

        Before listing, the last chunk's transcript is probed with a HEAD (unless it is in
        ``known_present``, the chunks the caller itself just wrote): chunks mostly arrive in
        order, so this settles "incomplete" in one request instead of a listing that grows
        with the session. Still exactly-once: whoever writes the last missing piece checks
        after its write, when the last chunk's transcript exists too, and lists.

        Raises InvalidDocumentError for a bad manifest or chunk transcript, StitchError
        (contracts) when they disagree, StorageError for S3 failures.
        """
        if manifest is None:
            manifest = self.load_manifest(bucket, session_id, layout)
        elif manifest.session_id != session_id:
            raise ValueError(f"manifest of session {manifest.session_id!r}, not {session_id!r}")
        if manifest is None:
            return StitchOutcome("no_manifest", session_id)
        last = manifest.chunk_count - 1
        if last not in set(known_present) and not self.transcript_exists(
            bucket, layout.chunk_transcript(session_id, last)
        ):
            # Not listed, so not counted: only the probed chunk is known to be missing.
            return StitchOutcome("incomplete", session_id, missing=(last,), missing_count=None)
        indices = self.list_chunk_transcript_indices(bucket, session_id, layout)
        state = check_completeness(session_id, manifest, indices)
        if state.unexpected:
            logger.warning(
                "chunk transcripts past the manifest's chunk_count are not stitched",
                extra={"session_id": session_id, "unexpected": list(state.unexpected)},
            )
        if state.missing:
            return StitchOutcome(
                "incomplete", session_id, missing=state.missing, missing_count=len(state.missing)
            )

        transcripts = self.load_chunk_transcripts(
            bucket, session_id, layout, range(manifest.chunk_count)
        )
        session = stitch(manifest, transcripts)
        written: list[str] = []
        for fmt in SESSION_FORMATS:
            key = layout.session_transcript(session_id, fmt)
            if self.put_create_only(bucket, key, render(session, fmt), MEDIA_TYPES[fmt]):
                written.append(key)
        json_key = layout.session_transcript(session_id, "json")
        status: StitchStatus = "stitched" if json_key in written else "already_stitched"
        logger.info(
            "session %s",
            status.replace("_", " "),
            extra={"session_id": session_id, "written": written},
        )
        return StitchOutcome(status, session_id, written=tuple(written))
