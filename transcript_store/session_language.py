"""The language a session's chunks are transcribed in (docs/design.md §2, "Session language").

Whisper told the wrong language does not fail, it *translates*: English audio told ``sv``
came back as Swedish text (WER 1.12). So a language is never guessed:

1. the session's stated language (its manifest's, or a request's) when Whisper knows it;
   a stated ``auto`` skips step 2;
2. else ``LANGUAGE`` when the deployment set one (``sv`` for an all-Swedish deployment);
3. else (``LANGUAGE=auto``, the default) the language first detected for the session,
   recorded create-only at ``transcripts/{session}/language.json`` so its chunks agree;
4. else ``auto``: the engine detects it, pooled over the chunk's windows, and the chunk job
   records it (:func:`record_detected`; the first writer wins).

A stated language that detection contradicts with confidence (:data:`CONFIDENT_DETECTION`)
is still obeyed, but logged at WARNING and noted in the transcript (:func:`language_warning`).
A manifest ``language`` Whisper does not know is reported once per manifest version
(:func:`report_manifest_language`, a create-only record under ``failures/``, logged at ERROR)
and the chunks go on as if none was stated: the audio is fine, it must not fail.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import ValidationError

from transcript_contracts.keys import KeyLayout
from transcript_contracts.language import is_supported_language
from transcript_contracts.models import Manifest, ManifestProblem, SessionLanguage
from transcript_contracts.validation import describe_validation_error
from transcript_store.errors import InvalidDocumentError
from transcript_store.s3 import TranscriptStore

logger = logging.getLogger(__name__)

AUTO: Final = "auto"
SESSION_LANGUAGE_NAME: Final = "language.json"
# A detection at least this sure of another language than the one the chunk was told is a
# contradiction worth a warning (Whisper base gives 0.95-0.96 on clear English or Swedish
# speech, 0.57-0.65 on espeak's hard Swedish voice, which it takes for Latin).
CONFIDENT_DETECTION: Final = 0.8
_MAX_RECORD_BYTES: Final = 64 * 1024
_JSON: Final = "application/json"

LanguageSource = Literal["stated", "settings", "session", "detect"]


@dataclass(frozen=True, slots=True)
class LanguageRecords:
    """Where a bucket's session-language records live: the store, the bucket, its layout."""

    store: TranscriptStore
    bucket: str
    layout: KeyLayout

    def session_key(self, session_id: str) -> str:
        return f"{self.layout.transcript_session_prefix(session_id)}{SESSION_LANGUAGE_NAME}"

    def manifest_problem_key(self, session_id: str, etag: str) -> str:
        # Under failures/ like the other records (notifications/records.py): outside the key
        # grammar, so listings of chunk transcripts skip it.
        # S3 ETags are hex (with "-N" for multipart uploads); anything else is dropped so the
        # key stays within the key characters.
        version = re.sub(r"[^A-Za-z0-9-]", "", etag)[:64] or "unknown"
        prefix = self.layout.transcript_session_prefix(session_id)
        return f"{prefix}failures/manifest-{version}.json"


@dataclass(frozen=True, slots=True)
class LanguageChoice:
    """What to tell the engine for a chunk, and why."""

    language: str  # a code Whisper knows, or "auto"
    source: LanguageSource

    @property
    def detects(self) -> bool:
        return self.language == AUTO


def session_language(
    records: LanguageRecords, session_id: str, stated: str | None, default: str
) -> LanguageChoice:
    """The language for the session's next chunk. ``stated``: the manifest's (or request's)
    language, ignored unless Whisper knows it (report it with :func:`report_manifest_language`);
    ``default``: ``LANGUAGE``. Reads the session's record only when it would decide (one GET;
    StorageError propagates: the caller retries rather than guess)."""
    if stated and is_supported_language(stated):
        return LanguageChoice(stated, "stated")
    # A session that asks for detection ("auto") gets it even where LANGUAGE is a code.
    if default != AUTO and stated != AUTO:
        return LanguageChoice(default, "settings")
    recorded = read_session_language(records, session_id)
    if recorded is not None:
        return LanguageChoice(recorded.language, "session")
    return LanguageChoice(AUTO, "detect")


def read_session_language(records: LanguageRecords, session_id: str) -> SessionLanguage | None:
    key = records.session_key(session_id)
    data = records.store.get_bytes(records.bucket, key, max_bytes=_MAX_RECORD_BYTES)
    if data is None:
        return None
    try:
        recorded = SessionLanguage.model_validate_json(data)
    except ValidationError as exc:
        reason = describe_validation_error(exc, root="document", limit=1)
        raise InvalidDocumentError(records.bucket, key, reason) from None
    if recorded.session_id != session_id or not is_supported_language(recorded.language):
        raise InvalidDocumentError(records.bucket, key, "not this session's language record")
    return recorded


def record_detected(
    records: LanguageRecords,
    session_id: str,
    language: str,
    probability: float | None,
    *,
    chunk_index: int,
    now: datetime | None = None,
) -> str:
    """Record ``language`` as the session's, create-only; answer the session's language: this
    one when it is the first, else the one recorded before (the first writer wins)."""
    if not is_supported_language(language):
        raise ValueError(f"not a language Whisper knows: {language!r}")
    record = SessionLanguage(
        session_id=session_id,
        language=language,
        probability=probability,
        chunk_index=chunk_index,
        detected_at=now or datetime.now(UTC),
    )
    key = records.session_key(session_id)
    body = record.model_dump_json().encode()
    if records.store.put_create_only(records.bucket, key, body, _JSON):
        logger.info(
            "session language detected and recorded",
            extra={"session_id": session_id, "language": language, "probability": probability},
        )
        return language
    earlier = read_session_language(records, session_id)
    if earlier is None:  # deleted between our write and read: ours is as good as any
        return language
    return earlier.language


def language_warning(told: str, detected: str | None, probability: float | None) -> str | None:
    """A note when the chunk was told ``told`` but confidently sounds like another language
    (likely a translation, not a transcription); None when detection agrees or is unsure."""
    if told == AUTO or detected is None or probability is None or detected == told:
        return None
    if probability < CONFIDENT_DETECTION:
        return None
    return (
        f"transcribed as {told!r} but the audio sounds like {detected!r} "
        f"(probability {probability:.2f}): the text may be a translation"
    )


def manifest_language_problem(manifest: Manifest) -> str | None:
    """Why the manifest's ``language`` can't be used, None when it can (or there is none)."""
    stated = manifest.language
    if stated is None or stated == AUTO or is_supported_language(stated):
        return None
    shown = stated if len(stated) <= 40 else f"{stated[:40]}..."
    return f"language {shown!r} is not a language code Whisper knows (such as 'sv' or 'en')"


def report_manifest_language(
    records: LanguageRecords,
    manifest: Manifest,
    *,
    default: str,
    now: datetime | None = None,
) -> bool:
    """Record, once per manifest version, that its ``language`` can't be used; True when this
    call recorded it (and logged it at ERROR), False when it was fine or already recorded.
    ``default``: what the chunks use instead (``LANGUAGE``)."""
    reason = manifest_language_problem(manifest)
    if reason is None:
        return False
    session_id = manifest.session_id
    manifest_key = records.layout.manifest(session_id)
    etag = records.store.object_etag(records.bucket, manifest_key)
    if etag is None:  # replaced or deleted since it was read: its successor is judged anew
        return False
    problem = ManifestProblem(
        session_id=session_id,
        manifest_key=manifest_key,
        manifest_etag=etag,
        field="language",
        value=(manifest.language or "")[:200],
        reason=reason,
        instead=default,
        recorded_at=now or datetime.now(UTC),
    )
    key = records.manifest_problem_key(session_id, etag)
    body = problem.model_dump_json().encode()
    if not records.store.put_create_only(records.bucket, key, body, _JSON):
        return False
    logger.error(
        "manifest %s: %s; its chunks are transcribed with LANGUAGE=%s instead",
        manifest_key,
        reason,
        default,
        extra={"session_id": session_id, "record": key},
    )
    return True
