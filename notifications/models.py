"""The notification documents: EventBridge event details (also the webhook bodies) and the
failure records written to S3 when a notification could not be delivered.

Every document carries ``schema_version`` and an ``event_id`` (a UUID): EventBridge and webhook
deliveries are at least once, so receivers deduplicate on ``event_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from transcript_contracts.models import ChunkIndex, Seconds, SessionId

EVENT_SOURCE: Final = "smart-transcription-router"
SESSION_TRANSCRIBED: Final = "Session Transcribed"
CHUNK_FAILED: Final = "Chunk Failed"
NOTIFICATION_SCHEMA_VERSION: Final = 1
MAX_REASON_CHARS: Final = 2000

DetailType = Literal["Session Transcribed", "Chunk Failed"]
DeliveryTarget = Literal["eventbridge", "webhook", "callback"]


def _shorten(value: str) -> str:
    return value if len(value) <= MAX_REASON_CHARS else value[: MAX_REASON_CHARS - 3] + "..."


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("occurred_at", check_fields=False)
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone")
        return value


class TranscriptKeys(BaseModel):
    """The session transcript's four objects, by format (``json`` is an alias: the name is
    taken on pydantic models)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, serialize_by_alias=True, validate_by_name=True
    )

    json_key: str = Field(alias="json")
    txt: str
    srt: str
    vtt: str


class SessionTranscribedDetail(_Document):
    """detail-type ``Session Transcribed``: the session transcript was written (once)."""

    schema_version: Literal[1] = NOTIFICATION_SCHEMA_VERSION
    event_id: str
    session_id: SessionId
    bucket: str
    transcript_keys: TranscriptKeys
    chunk_count: Annotated[int, Field(ge=1)]
    duration_s: Seconds
    language: str
    # The model that transcribed the chunks; several joined by "," when they differ.
    model: str
    models: list[str]
    occurred_at: datetime


class ChunkFailedDetail(_Document):
    """detail-type ``Chunk Failed``: a chunk was given up on (undecodable or oversized audio:
    its message goes on to the DLQ).

    ``session_id``/``chunk_index`` are None when the key is outside the key grammar.
    """

    schema_version: Literal[1] = NOTIFICATION_SCHEMA_VERSION
    event_id: str
    session_id: SessionId | None
    chunk_index: ChunkIndex | None
    bucket: str
    key: Annotated[str, Field(max_length=1024)]
    # The failed audio object's version (None when it could not be read): one event per
    # version, however many receives fail on it.
    etag: str | None = None
    reason: str
    occurred_at: datetime

    @field_validator("reason")
    @classmethod
    def _short_reason(cls, value: str) -> str:
        return _shorten(value)


NotificationDetail = SessionTranscribedDetail | ChunkFailedDetail


class DeliveryFailureRecord(_Document):
    """``{transcript_prefix}{session}/failures/delivery-{event_id}-{target}.json``: a
    notification that was not delivered after its retries, with the detail to re-send by hand.

    ``destination``: the bus, or the webhook's scheme and host only (URLs may carry tokens).
    """

    schema_version: Literal[1] = NOTIFICATION_SCHEMA_VERSION
    event_id: str
    detail_type: DetailType
    target: DeliveryTarget
    destination: str
    attempts: Annotated[int, Field(ge=0)]
    error: str
    occurred_at: datetime
    detail: SessionTranscribedDetail | ChunkFailedDetail

    @field_validator("error")
    @classmethod
    def _short_error(cls, value: str) -> str:
        return _shorten(value)
