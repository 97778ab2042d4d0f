"""The chunk job: one audio chunk in S3 to its create-only chunk transcript (docs/design.md §2).

Steps, each written once here: skip if the transcript exists (a HEAD, P3) -> fetch (size cap,
ETag pin, timeouts; a temp file never named after the key, P9) -> decode (duration cap, P18)
-> transcribe (the adapter's batching) -> build the transcript -> write it create-only (P7)
-> stitch the session if it is now complete (P8).

Every failure is a :class:`~chunk_job.errors.PermanentChunkError` or a
:class:`~chunk_job.errors.TransientChunkError`; the adapters map them: ``POST /transcribe-s3``
to 4xx / 502, the batch worker and the server's drainer (``batch_worker.batch``) to a message
left for the DLQ (with ``Chunk Failed``) or for redelivery.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from chunk_job.audio import Decoder, decode
from chunk_job.engine import Transcribe, as_chunk_error
from chunk_job.errors import (
    ChunkJobError,
    InvalidChunkKeyError,
    StoredTranscriptInvalidError,
    TransientChunkError,
)
from chunk_job.fetch import Fetched, fetch
from chunk_job.language import chunk_language
from chunk_job.transcript import build_transcript
from transcript_contracts.errors import KeyGrammarError, StitchError
from transcript_contracts.keys import KeyLayout
from transcript_contracts.language import is_supported_language
from transcript_contracts.models import ChunkTranscript, Manifest, TranscribedBy, utc_now
from transcript_store import InvalidDocumentError, StitchOutcome, StorageError, TranscriptStore
from transcript_store.session_language import (
    AUTO as AUTO_LANGUAGE,
)
from transcript_store.session_language import (
    LanguageRecords,
    language_warning,
    record_detected,
    session_language,
)
from whisper_engine.errors import WhisperEngineError
from whisper_engine.results import TranscriptionResult

if TYPE_CHECKING:
    import numpy as np
    from mypy_boto3_s3 import S3Client
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

DOWNLOAD_THREADS: Final = 4


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """An audio chunk object: where it is and which chunk of which session it is."""

    bucket: str
    key: str
    session_id: str
    index: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class Limits:
    """MAX_DOWNLOAD_BYTES, MAX_AUDIO_SECONDS and the fetch deadline (FETCH_TIMEOUT_S; None:
    only the client's own timeouts)."""

    max_download_bytes: int
    max_audio_seconds: float
    fetch_timeout_s: float | None = None


@dataclass(slots=True)
class Decoded:
    """A fetched and decoded chunk, waiting for the engine."""

    ref: ChunkRef
    etag: str
    samples: NDArray[np.float32] | None
    fetch_s: float


@dataclass(frozen=True, slots=True)
class Transcribed:
    ref: ChunkRef
    etag: str
    result: TranscriptionResult
    processing_s: float


@dataclass(frozen=True)
class ChunkJob:
    """The steps, with what they need injected (moto, fake decoders and clocks in tests).

    ``transcribed_by`` and ``model_version`` are recorded in every transcript it builds.
    """

    s3: S3Client
    store: TranscriptStore
    layout: KeyLayout
    limits: Limits
    transcribed_by: TranscribedBy
    default_language: str
    model_version: str | None = None
    # WORD_TIMESTAMPS: keep each segment's words in the transcripts this job builds.
    word_timestamps: bool = False
    decoder: Decoder = decode
    now: Callable[[], datetime] = field(default=utc_now)

    # -- one chunk -------------------------------------------------------------------------

    def chunk(self, bucket: str, key: str) -> ChunkRef:
        """The chunk ``key`` names; InvalidChunkKeyError when it names none."""
        try:
            parsed = self.layout.parse_audio_chunk(key)
        except KeyGrammarError as exc:
            raise InvalidChunkKeyError(f"key is not an audio chunk: {exc.reason}") from None
        return ChunkRef(bucket, key, parsed.session_id, parsed.index)

    def transcript_key(self, ref: ChunkRef) -> str:
        return self.layout.chunk_transcript(ref.session_id, ref.index)

    def already_transcribed(self, ref: ChunkRef) -> bool:
        """A HEAD on the chunk transcript: 404 False, 200 True, anything else transient (P3)."""
        try:
            return self.store.transcript_exists(ref.bucket, self.transcript_key(ref))
        except StorageError as exc:
            raise TransientChunkError(f"transcript HEAD: {exc}") from exc

    def stored_transcript(self, ref: ChunkRef) -> ChunkTranscript | None:
        """The chunk transcript already written, None when there is none. Read with the
        store's size cap; one that is too large or invalid is StoredTranscriptInvalidError."""
        try:
            return self.store.load_chunk_transcript(
                ref.bucket, ref.session_id, ref.index, self.layout
            )
        except InvalidDocumentError as exc:
            raise StoredTranscriptInvalidError(
                f"{exc}; it is never overwritten (create-only): delete it to transcribe again"
            ) from exc
        except StorageError as exc:
            raise TransientChunkError(f"transcript GET: {exc}") from exc

    def manifest(self, bucket: str, session_id: str) -> Manifest | None:
        """The session's manifest for the language, None when absent or unusable (the stitch
        reads it again and reports a bad one)."""
        try:
            return self.store.load_manifest(bucket, session_id, self.layout)
        except (InvalidDocumentError, StorageError) as exc:
            logger.warning("manifest unusable for the language: %s", exc)
            return None

    def language_for(self, session_id: str, stated: str | None, bucket: str | None = None) -> str:
        """What the engine is told for a chunk of ``session_id`` (docs/design.md §2, "Session
        language"): ``stated`` when Whisper knows it, else LANGUAGE, else (``auto``) the
        session's recorded language from ``bucket``, else ``auto``."""
        if bucket is None:
            return chunk_language(session_id, stated, self.default_language)
        chunk_language(session_id, stated, self.default_language)  # logs an ignored one
        records = LanguageRecords(self.store, bucket, self.layout)
        try:
            return session_language(records, session_id, stated, self.default_language).language
        except InvalidDocumentError as exc:
            logger.warning("session language record ignored: %s", exc)
            return AUTO_LANGUAGE
        except StorageError as exc:
            raise TransientChunkError(f"session language GET: {exc}") from exc

    def fetch(self, bucket: str, key: str, directory: Path) -> Fetched:
        return fetch(
            self.s3,
            bucket,
            key,
            max_bytes=self.limits.max_download_bytes,
            directory=directory,
            timeout_s=self.limits.fetch_timeout_s,
        )

    def decode(self, path: Path) -> NDArray[np.float32]:
        return self.decoder(path, self.limits.max_audio_seconds)

    def build(
        self,
        ref: ChunkRef,
        etag: str,
        result: TranscriptionResult,
        processing_s: float,
        *,
        told: str | None = None,
    ) -> ChunkTranscript:
        """The chunk transcript. ``told``: the language the engine was told (from
        :meth:`language_for`): a confident contradiction is noted, a detection (``auto``)
        becomes the session's language if it is the first."""
        warning = None if told is None else self._language_notes(ref, result, told)
        return build_transcript(
            bucket=ref.bucket,
            key=ref.key,
            session_id=ref.session_id,
            index=ref.index,
            etag=etag,
            result=result,
            processing_s=processing_s,
            created_at=self.now(),
            transcribed_by=self.transcribed_by,
            model_version=self.model_version,
            language_warning=warning,
            word_timestamps=self.word_timestamps,
        )

    def _language_notes(self, ref: ChunkRef, result: TranscriptionResult, told: str) -> str | None:
        detected, probability = result.detected_language, result.language_probability
        warning = language_warning(told, detected, probability)
        if warning is not None:
            logger.warning("chunk %s %s", ref.uri, warning, extra={"session_id": ref.session_id})
        if told != AUTO_LANGUAGE or not is_supported_language(detected) or detected is None:
            return warning
        records = LanguageRecords(self.store, ref.bucket, self.layout)
        try:
            session = record_detected(
                records, ref.session_id, detected, probability, chunk_index=ref.index
            )
        except (StorageError, InvalidDocumentError) as exc:
            # Only the agreement of later chunks is lost: they detect again.
            logger.warning("session language not recorded: %s", exc)
            return warning
        if session != result.language:
            logger.warning(
                "chunk %s was detected as %r; its session's language is %r (detected first)",
                ref.uri,
                result.language,
                session,
                extra={"session_id": ref.session_id},
            )
        return warning

    def write(self, ref: ChunkRef, transcript: ChunkTranscript) -> bool:
        """Create-only (P7): True when this call wrote it, False when it already existed."""
        try:
            written = self.store.write_chunk_transcript(ref.bucket, transcript, self.layout)
        except StorageError as exc:
            raise TransientChunkError(f"transcript write: {exc}") from exc
        if not written:
            logger.info(
                "transcript was written by someone else meanwhile (412)",
                extra={"s3_key": ref.key},
            )
        return written

    def stitch_if_complete(
        self,
        bucket: str,
        session_id: str,
        *,
        manifest: Manifest | None,
        known_present: Sequence[int],
    ) -> StitchOutcome | None:
        """Stitch when the session is complete (P8). S3 failures are transient (the caller's
        chunks are written: a retry skips them and stitches then); a session whose documents
        are invalid or disagree is logged and answers None — a data problem of the session,
        not of these chunks."""
        try:
            return self.store.stitch_session_if_complete(
                bucket,
                session_id,
                self.layout,
                # Only a manifest that exists is reused: "absent" is re-read after the writes,
                # or one uploaded meanwhile would leave the session unstitched.
                manifest=manifest,
                known_present=known_present,
            )
        except StorageError as exc:
            raise TransientChunkError(f"stitch check: {exc}") from exc
        except (InvalidDocumentError, StitchError) as exc:
            logger.error("session cannot be stitched: %s", exc, extra={"session_id": session_id})
            return None

    # -- a batch ---------------------------------------------------------------------------

    def fetch_and_decode(
        self, refs: Sequence[ChunkRef], *, stop: Callable[[], bool] = lambda: False
    ) -> list[Decoded | ChunkJobError | None]:
        """Fetch and decode ``refs`` on a few threads. Per chunk: its audio, its error, or
        None when ``stop()`` said not to start it. Unexpected exceptions propagate."""

        def one(ref: ChunkRef, directory: Path) -> Decoded | ChunkJobError | None:
            if stop():
                return None
            started = time.perf_counter()
            try:
                fetched = self.fetch(ref.bucket, ref.key, directory)
                try:
                    samples = self.decode(fetched.path)
                finally:
                    fetched.path.unlink(missing_ok=True)
            except ChunkJobError as exc:
                return exc
            return Decoded(ref, fetched.etag, samples, time.perf_counter() - started)

        if not refs:
            return []
        with (
            tempfile.TemporaryDirectory(prefix="smart-router-chunks-") as tmp,
            ThreadPoolExecutor(min(DOWNLOAD_THREADS, len(refs))) as pool,
        ):
            return list(pool.map(lambda ref: one(ref, Path(tmp)), refs))

    def transcribe(
        self, decoded: Sequence[Decoded], languages: Sequence[str | None], engine: Transcribe
    ) -> list[Transcribed | ChunkJobError]:
        """Run the decoded chunks through ``engine`` together; each chunk's processing time
        is its fetch plus its share (by audio length) of the batch. The audio is freed."""
        if not decoded:
            return []
        audios: list[NDArray[np.float32]] = []
        for item in decoded:
            if item.samples is None:
                raise ValueError(f"the audio of {item.ref.uri} was already released")
            audios.append(item.samples)
        started = time.perf_counter()
        outcomes = engine(audios, languages)
        del audios
        elapsed = time.perf_counter() - started
        for item in decoded:
            item.samples = None  # before the writes: the audio is no longer needed
        if len(outcomes) != len(decoded):
            error = TransientChunkError(
                f"engine answered {len(outcomes)} results for {len(decoded)} chunks"
            )
            return [error for _ in decoded]
        total_audio = sum(o.duration_s for o in outcomes if isinstance(o, TranscriptionResult))
        results: list[Transcribed | ChunkJobError] = []
        for item, outcome in zip(decoded, outcomes, strict=True):
            if isinstance(outcome, WhisperEngineError):
                results.append(as_chunk_error(outcome))
                continue
            share = elapsed * outcome.duration_s / total_audio if total_audio else 0.0
            results.append(Transcribed(item.ref, item.etag, outcome, item.fetch_s + share))
        return results
