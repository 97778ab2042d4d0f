"""Event fixtures and small factories that vary them (bucket, key, etag, event id, shape)."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent


def load_event(name: str) -> dict[str, Any]:
    data = json.loads((EVENTS_DIR / name).read_text())
    if not isinstance(data, dict):
        raise TypeError(f"{name} does not hold a JSON object")
    return data


def object_created(
    bucket: str,
    key: str,
    etag: str,
    *,
    event_id: str | None = None,
    moto_shape: bool = False,
    size: int = 1234,
) -> dict[str, Any]:
    """The AWS documentation sample (or moto's recorded event) for another object."""
    event = copy.deepcopy(
        load_event("s3_object_created_moto.json" if moto_shape else "s3_object_created.json")
    )
    event["id"] = event_id or str(uuid.uuid4())
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    detail = event["detail"]
    detail["bucket"]["name"] = bucket
    detail["object"]["key"] = key
    detail["object"]["size"] = size
    detail["object"]["eTag" if moto_shape else "etag"] = etag
    return event


def manual_redrive(bucket: str, key: str, *, force: bool | None = None) -> dict[str, Any]:
    event = load_event("manual_redrive.json")
    event["bucket"], event["key"] = bucket, key
    if force is not None:
        event["force"] = force
    return event
