from __future__ import annotations

from typing import Any

import pytest

from router.s3_event import IgnoredEvent, ObjectEvent, classify
from tests.events.factories import load_event, manual_redrive, object_created


def test_aws_documentation_sample_parses() -> None:
    got = classify(load_event("s3_object_created.json"))
    assert got == ObjectEvent(
        bucket="amzn-s3-demo-bucket1",
        key="example-key",
        etag="b1946ac92492d2347c6235b4d2611184",
        origin="eventbridge",
        event_id="17793124-05d4-b198-2fde-7ededc63b103",
    )


def test_moto_event_with_capital_t_etag_parses() -> None:
    got = classify(load_event("s3_object_created_moto.json"))
    assert isinstance(got, ObjectEvent)
    assert got.etag == "835668f4c4d8bef9b902a7ea0abf475a"
    assert got.key == "audio/session-1/chunk-0003.mp3"


def test_factory_variants_keep_the_shape() -> None:
    for moto_shape in (False, True):
        event = object_created("b-1", "audio/s/chunk-1.wav", '"quoted"', moto_shape=moto_shape)
        got = classify(event)
        assert isinstance(got, ObjectEvent)
        assert (got.bucket, got.key, got.etag) == ("b-1", "audio/s/chunk-1.wav", "quoted")


def test_manual_redrive() -> None:
    assert classify(load_event("manual_redrive.json")) == ObjectEvent(
        "transcripts-test-bucket", "audio/session-1/chunk-0003.mp3", None, "manual"
    )
    forced = classify(manual_redrive("bkt", "audio/s/chunk-0.mp3", force=True))
    assert isinstance(forced, ObjectEvent) and forced.force


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (load_event("s3_object_deleted.json"), "not an S3 'Object Created' event"),
        (load_event("scheduled_event.json"), "not an S3 'Object Created' event"),
        ([1, 2], "event is a list"),
        ("audio/s/chunk-0.mp3", "event is a str"),
        (None, "event is a NoneType"),
        ({}, "unrecognised event shape"),
        ({"Records": []}, "unrecognised event shape"),
        ({"bucket": "b-1"}, "unrecognised event shape"),
        ({"bucket": "b-1", "key": "k", "extra": 1}, "unrecognised event shape"),
        ({"bucket": "b-1", "key": 7}, "malformed re-drive payload: key"),
        ({"bucket": "b-1", "key": "k", "force": "maybe"}, "malformed re-drive payload: force"),
    ],
)
def test_other_events_are_ignored_with_a_reason(event: Any, reason: str) -> None:
    got = classify(event)
    assert isinstance(got, IgnoredEvent)
    assert reason in got.reason


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    event = object_created("bkt", "audio/s/chunk-0.mp3", "e")
    node: Any = event
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return event


@pytest.mark.parametrize(
    "path",
    [
        ("detail", "object", "key"),
        ("detail", "object", "etag"),
        ("detail", "bucket"),
        ("detail",),
        ("id",),
        ("time",),
    ],
)
def test_malformed_s3_events_are_ignored(path: tuple[str, ...]) -> None:
    got = classify(_without(path))
    assert isinstance(got, IgnoredEvent)
    assert got.reason.startswith("malformed S3 event")


def test_wrong_types_inside_the_detail_are_ignored() -> None:
    event = object_created("bkt", "audio/s/chunk-0.mp3", "e")
    event["detail"]["object"]["size"] = -5
    assert isinstance(classify(event), IgnoredEvent)
    event = object_created("bkt", "audio/s/chunk-0.mp3", "e")
    event["detail"] = "not an object"
    assert isinstance(classify(event), IgnoredEvent)
