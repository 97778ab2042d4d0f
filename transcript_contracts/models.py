"""Documents of docs/design.md §2 as pydantic models, each with a ``schema_version``.

Documents we write are strict (unknown fields rejected) so that a typo never passes silently;
the manifest comes from uploaders and tolerates extra fields for forward compatibility.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import pairwise
from typing import Annotated, Final, Literal, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from transcript_contracts.keys import MAX_CHUNK_INDEX, check_key_characters, check_session_id

SCHEMA_VERSION: Final = 1
MAX_QUEUE_MESSAGE_BYTES: Final = 256 * 1024

QueueReason = Literal["server_unhealthy", "retries_exhausted", "forced"]
# Which path transcribed a chunk: the server on a direct request (the router's forward), the
# server's queue drainer, or the batch worker (``smart-router status`` shows it).
TranscribedBy = Literal["server-direct", "server-drainer", "worker"]


def _session_id(value: str) -> str:
    return check_session_id(value)


def _object_key(value: str) -> str:
    check_key_characters(value)
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


SessionId = Annotated[str, AfterValidator(_session_id)]
ObjectKey = Annotated[str, AfterValidator(_object_key)]
ChunkIndex = Annotated[int, Field(ge=0, le=MAX_CHUNK_INDEX, strict=True)]
Seconds = Annotated[float, Field(ge=0), AfterValidator(_finite)]
SchemaVersion = Literal[1]
ModelVersion = Annotated[
    str | None,
    Field(max_length=64, pattern=r"^v-[0-9a-f]{16}$", exclude_if=lambda value: value is None),
]

# Optional language fields of the transcripts (issue 18): left out of the JSON when unset, so
# documents without them keep their exact bytes.
DetectedLanguage = Annotated[
    str | None, Field(max_length=8, exclude_if=lambda value: value is None)
]
Probability = Annotated[float | None, Field(ge=0, le=1, exclude_if=lambda value: value is None)]
LanguageWarning = Annotated[
    str | None, Field(max_length=500, exclude_if=lambda value: value is None)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WordTiming(_Strict):
    start: Seconds
    end: Seconds
    word: str
    probability: float | None = None


class TranscriptSegment(_Strict):
    """A stretch of text with times in seconds (from the chunk's start in a chunk transcript)."""

    start: Seconds
    end: Seconds
    text: str
    words: list[WordTiming] | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> TranscriptSegment:
        if self.end < self.start:
            raise ValueError(f"segment ends ({self.end}) before it starts ({self.start})")
        return self


class TimedText(Protocol):
    """A transcribed stretch as an engine gives it (``whisper_engine.Segment``)."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    @property
    def text(self) -> str: ...


def segments_from(items: Iterable[TimedText], *, words: bool = False) -> list[TranscriptSegment]:
    """An engine's segments as contract segments, for the server and the worker alike. The
    engine may round an end a hair before its start; the contract forbids that: clamped.
    ``words``: keep the segments' words (an engine segment's optional ``words``; the
    WORD_TIMESTAMPS setting), clamped the same way."""
    return [
        TranscriptSegment(
            start=s.start,
            end=max(s.start, s.end),
            text=s.text,
            words=_words_of(s) if words else None,
        )
        for s in items
    ]


def _words_of(segment: TimedText) -> list[WordTiming] | None:
    timed = getattr(segment, "words", None)
    if timed is None:
        return None
    return [
        WordTiming(
            start=w.start,
            end=max(w.start, w.end),
            word=w.word,
            probability=getattr(w, "probability", None),
        )
        for w in timed
    ]


class ManifestChunk(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    index: ChunkIndex
    offset_s: Seconds | None = None


class Manifest(BaseModel):
    """``audio/{session_id}/manifest.json``: how many chunks make the session, optional offsets."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: SchemaVersion = SCHEMA_VERSION
    session_id: SessionId
    chunk_count: Annotated[int, Field(ge=1, le=MAX_CHUNK_INDEX + 1, strict=True)]
    language: str | None = None
    chunks: list[ManifestChunk] | None = None
    # Where to POST this session's signed notifications (webhooks). Checked (https, public
    # address: P17) only when a notification is delivered, so a bad URL never blocks the
    # session's transcription; a refused URL is recorded as a failed delivery.
    callback_url: str | None = None

    @model_validator(mode="after")
    def _chunks_consistent(self) -> Manifest:
        if not self.chunks:
            return self
        seen: set[int] = set()
        for chunk in self.chunks:
            if chunk.index >= self.chunk_count:
                raise ValueError(
                    f"chunks[].index {chunk.index} is outside 0..{self.chunk_count - 1}"
                )
            if chunk.index in seen:
                raise ValueError(f"chunks[].index {chunk.index} appears twice")
            seen.add(chunk.index)
        offsets = [
            (c.index, c.offset_s)
            for c in sorted(self.chunks, key=lambda c: c.index)
            if c.offset_s is not None
        ]
        for (i_a, o_a), (i_b, o_b) in pairwise(offsets):
            if o_b < o_a:
                raise ValueError(
                    f"offset_s must not decrease with the index: chunk {i_b} ({o_b}) "
                    f"starts before chunk {i_a} ({o_a})"
                )
        return self

    def offset_for(self, index: int) -> float | None:
        for chunk in self.chunks or ():
            if chunk.index == index:
                return chunk.offset_s
        return None


class SourceObject(_Strict):
    bucket: str = Field(min_length=3, max_length=63)
    key: ObjectKey
    etag: str = Field(min_length=1, max_length=128)

    @field_validator("etag")
    @classmethod
    def _strip_quotes(cls, value: str) -> str:
        # S3 quotes ETags in HEAD/GET responses but not in events: store one form.
        return value.strip('"')


class ChunkTranscript(_Strict):
    """``transcripts/{session_id}/chunk-{index:04d}.json``."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    session_id: SessionId
    chunk_index: ChunkIndex
    source: SourceObject
    language: str
    model: str
    # The registry version (v-<hash>) of the model, when it came from the model registry.
    # Left out of the JSON when unknown, so documents of local models keep their exact shape.
    model_version: ModelVersion = None
    # Which path wrote it; absent in documents written before the field existed.
    transcribed_by: TranscribedBy | None = Field(None, exclude_if=lambda value: value is None)
    # What the audio sounds like whatever it was transcribed as (the engine's detection pooled
    # over the chunk's windows), and a note when that confidently contradicts ``language``
    # (docs/design.md §2, "Session language"). Absent when the engine gave no detection.
    detected_language: DetectedLanguage = None
    language_probability: Probability = None
    language_warning: LanguageWarning = None
    duration_s: Seconds
    text: str
    segments: list[TranscriptSegment]
    processing_s: Seconds
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("created_at must carry a time zone")
        return value.astimezone(UTC)


class SessionChunk(_Strict):
    chunk_index: ChunkIndex
    offset_s: Seconds
    duration_s: Seconds
    source: SourceObject
    language: str
    detected_language: DetectedLanguage = None
    language_probability: Probability = None
    language_warning: LanguageWarning = None
    model: str
    model_version: ModelVersion = None
    text: str
    segments: list[TranscriptSegment]


class SessionTranscript(_Strict):
    """``transcripts/{session_id}/session.json``: chunks in index order, segments shifted."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    session_id: SessionId
    chunk_count: Annotated[int, Field(ge=1, strict=True)]
    language: str
    models: list[str]
    # The registry versions the chunks were transcribed with (sorted); absent when none known.
    model_versions: list[str] | None = Field(None, exclude_if=lambda value: value is None)
    duration_s: Seconds
    text: str
    segments: list[TranscriptSegment]
    chunks: list[SessionChunk]
    # The newest chunk's time, not "now": the same chunks must always give the same bytes.
    created_at: datetime


class SessionLanguage(_Strict):
    """``transcripts/{session_id}/language.json``: the language first detected for a session
    that states none, written create-only so that its later chunks agree."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    session_id: SessionId
    language: str = Field(max_length=8)
    probability: float | None = Field(None, ge=0, le=1)
    chunk_index: ChunkIndex
    detected_at: datetime

    @field_validator("detected_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("detected_at must carry a time zone")
        return value.astimezone(UTC)


class ManifestProblem(_Strict):
    """``transcripts/{session_id}/failures/manifest-{etag}.json``: a manifest field that can't
    be used (a ``language`` Whisper does not know), recorded once per manifest version."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    session_id: SessionId
    manifest_key: ObjectKey
    manifest_etag: str = Field(min_length=1, max_length=128)
    field: Literal["language"]
    value: str = Field(max_length=200)
    reason: str = Field(max_length=2000)
    # What the chunks use instead: a code, "auto", or "LANGUAGE" (the transcribing deployable's
    # setting, when the one that noticed does not know it: the router).
    instead: str = Field(max_length=16)
    recorded_at: datetime


class QueueMessage(_Strict):
    """The SQS work item: a pointer to the chunk, never the audio."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    bucket: str = Field(min_length=3, max_length=63)
    key: ObjectKey
    etag: str = Field(min_length=1, max_length=128)
    session_id: SessionId
    chunk_index: ChunkIndex
    enqueued_at: datetime
    reason: QueueReason

    @field_validator("etag")
    @classmethod
    def _strip_quotes(cls, value: str) -> str:
        return value.strip('"')

    def to_body(self) -> str:
        body = self.model_dump_json()
        size = len(body.encode("utf-8"))
        if size > MAX_QUEUE_MESSAGE_BYTES:
            raise ValueError(f"queue message is {size} bytes, over {MAX_QUEUE_MESSAGE_BYTES}")
        return body


def utc_now() -> datetime:
    return datetime.now(UTC)
