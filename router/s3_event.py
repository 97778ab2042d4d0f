"""The edge: what the router accepts, parsed with Powertools parser models.

- S3 "Object Created" events delivered by EventBridge. AWS documents the ETag as
  ``detail.object.etag``; moto's emulator sends ``eTag``: both are accepted.
- A manual re-drive from an operator: ``{"bucket": ..., "key": ..., "force"?: bool}``.

Anything else becomes an :class:`IgnoredEvent` with the reason (P2): it is logged and the
invocation succeeds, so a malformed event never makes Lambda retry it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models.event_bridge import EventBridgeModel
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from transcript_contracts.validation import describe_validation_error

OBJECT_CREATED = "Object Created"
S3_SOURCE = "aws.s3"
_MANUAL_FIELDS = frozenset({"bucket", "key", "force"})


class S3BucketDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=3, max_length=63)


class S3ObjectDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(min_length=1)
    size: int | None = Field(None, ge=0)
    etag: str = Field(min_length=1, validation_alias=AliasChoices("etag", "eTag"))
    version_id: str | None = Field(None, validation_alias="version-id")
    sequencer: str | None = None


class S3ObjectCreatedDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str | None = None
    bucket: S3BucketDetail
    object: S3ObjectDetail
    request_id: str | None = Field(None, validation_alias="request-id")
    requester: str | None = None
    source_ip_address: str | None = Field(None, validation_alias="source-ip-address")
    reason: str | None = None


class S3ObjectCreatedEvent(EventBridgeModel):
    """EventBridge envelope with a typed S3 "Object Created" detail."""

    source: Literal["aws.s3"]
    detail_type: Literal["Object Created"] = Field(alias="detail-type")
    detail: S3ObjectCreatedDetail


class ManualRedrive(BaseModel):
    """An operator's re-drive of one object; ``force`` bypasses the duplicate record."""

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(min_length=1)
    force: bool = False


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """An object the router should look at. ``etag`` is None for a manual re-drive (the router
    reads it with a HEAD)."""

    bucket: str
    key: str
    etag: str | None
    origin: Literal["eventbridge", "manual"]
    force: bool = False
    event_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class IgnoredEvent:
    reason: str


def _first_error(exc: ValidationError) -> str:
    return describe_validation_error(exc, root="event", limit=1)


def classify(event: object) -> ObjectEvent | IgnoredEvent:
    """Turn a raw Lambda event into an ObjectEvent, or say why it is ignored."""
    if not isinstance(event, Mapping):
        return IgnoredEvent(f"event is a {type(event).__name__}, not a JSON object")
    raw: Mapping[str, Any] = event
    if "detail-type" in raw or "source" in raw or "detail" in raw:
        return _classify_eventbridge(raw)
    if {"bucket", "key"} <= raw.keys() and raw.keys() <= _MANUAL_FIELDS:
        try:
            manual = parse(event=dict(raw), model=ManualRedrive)
        except ValidationError as exc:
            return IgnoredEvent(f"malformed re-drive payload: {_first_error(exc)}")
        return ObjectEvent(manual.bucket, manual.key, None, "manual", force=manual.force)
    shown = sorted(str(k) for k in raw)[:10]
    return IgnoredEvent(f"unrecognised event shape (fields {shown})")


def _classify_eventbridge(raw: Mapping[str, Any]) -> ObjectEvent | IgnoredEvent:
    source, detail_type = raw.get("source"), raw.get("detail-type")
    if source != S3_SOURCE or detail_type != OBJECT_CREATED:
        return IgnoredEvent(
            f"not an S3 {OBJECT_CREATED!r} event (source={str(source)[:64]!r}, "
            f"detail-type={str(detail_type)[:64]!r})"
        )
    try:
        parsed = parse(event=dict(raw), model=S3ObjectCreatedEvent)
    except ValidationError as exc:
        return IgnoredEvent(f"malformed S3 event: {_first_error(exc)}")
    obj = parsed.detail.object
    return ObjectEvent(
        bucket=parsed.detail.bucket.name,
        key=obj.key,
        etag=obj.etag.strip('"'),
        origin="eventbridge",
        event_id=parsed.id,
    )
