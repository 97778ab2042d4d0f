"""A manifest ``language`` Whisper does not know (issue 18, docs/design.md §2 "Session
language"): reported once, never forwarded, and the session's chunks go on — no ``Chunk
Failed`` (the audio is fine), no retries into the on-failure destination."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from notifications import CHUNK_FAILED
from tests.events.factories import object_created
from tests.notifications.support import EventObserver
from tests.router.conftest import REGION, SESSION, AppFactory, Aws, Clock, FakeServer, invoke
from tests.transcript_store.factories import BUCKET

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture
def observer(aws: Aws) -> EventObserver:
    return EventObserver.create(SESSION.client("events", region_name=REGION), aws.sqs)


def _chunk(aws: Aws, session_id: str, index: int) -> dict[str, Any]:
    key = f"audio/{session_id}/chunk-{index:04d}.mp3"
    return object_created(BUCKET, key, aws.put_audio(key))


def _failure_records(aws: Aws, session_id: str) -> list[dict[str, Any]]:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"transcripts/{session_id}/failures/")
    return [json.loads(aws.read(o["Key"])) for o in listed.get("Contents", [])]


@pytest.mark.parametrize("stated", ["swedish", "xx", "sv-SE"])
def test_unknown_manifest_language_is_reported_once_and_the_chunks_go_on(
    aws: Aws,
    make_app: AppFactory,
    server: FakeServer,
    clock: Clock,
    observer: EventObserver,
    router_logs: io.StringIO,
    stated: str,
) -> None:
    make_app(event_bus_name="default")
    manifest_key = aws.put_manifest("m1", 3, language=stated)
    bodies: list[dict[str, Any]] = []
    server.before_write = bodies.append

    results = [invoke(_chunk(aws, "m1", i), clock) for i in range(2)]
    results.append(invoke(object_created(BUCKET, manifest_key, "m-etag"), clock))
    results.append(invoke(_chunk(aws, "m1", 2), clock))

    assert [r["status"] for r in results] == [
        "forwarded",
        "forwarded",
        "manifest_checked",
        "forwarded",
    ]
    # Never passed on: the server would refuse it (422/400) and the router would retry the
    # event into its on-failure destination, once per chunk.
    assert all("language" not in body for body in bodies)
    [record] = _failure_records(aws, "m1")
    assert (record["field"], record["value"]) == ("language", stated)
    errors = [
        line
        for line in (json.loads(raw) for raw in router_logs.getvalue().splitlines())
        if line["level"] == "ERROR"
    ]
    assert len(errors) == 1 and stated in errors[0]["message"]
    assert [e for e in observer.events() if e["detail-type"] == CHUNK_FAILED] == []
    # The session is stitched, in the chunks' language, not the manifest's.
    assert results[-1]["stitch"]["status"] == "stitched"
    session = json.loads(aws.read("transcripts/m1/session.json"))
    assert session["language"] != stated


@pytest.mark.parametrize("stated", ["sv", "auto"])
def test_a_usable_manifest_language_is_forwarded_and_not_reported(
    aws: Aws, make_app: AppFactory, server: FakeServer, clock: Clock, stated: str
) -> None:
    make_app()
    aws.put_manifest("m2", 2, language=stated)
    bodies: list[dict[str, Any]] = []
    server.before_write = bodies.append
    assert invoke(_chunk(aws, "m2", 0), clock)["status"] == "forwarded"
    assert bodies[0]["language"] == stated
    assert _failure_records(aws, "m2") == []
