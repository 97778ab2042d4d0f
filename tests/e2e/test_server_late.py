"""The server-late path end to end (issue 15): chunks are uploaded while the server is down
(they take the queue path), the server starts later and its drainer transcribes them; no batch
worker runs. The server is killed mid-batch once on the way; a poison chunk rides along."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smart_router.evaluation import wer
from smart_router.local.pipeline import LocalPipeline, PipelineConfig
from tests.e2e.conftest import english_session
from transcript_contracts.models import ChunkTranscript, SessionTranscript
from transcript_store.queue_depth import read_queue_depth

pytestmark = pytest.mark.slow

WER_BOUND = 0.35
POISON = b"RIFF....WAVEfmt garbage" * 40


@pytest.fixture(scope="module")
def late_pipeline(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPipeline]:
    config = PipelineConfig(
        work_dir=tmp_path_factory.mktemp("local-run-late"),
        model_dir=model_dir,
        start_server=False,
        server_drains=True,
        language="en",
        # Short, so that what the killed server held comes back within seconds.
        visibility_timeout_s=6,
        heartbeat_interval_s=2.0,
        bucket_versioning=True,
    )
    with LocalPipeline(config) as running:
        yield running


def _versions(pipeline: LocalPipeline, prefix: str) -> list[str]:
    listed = pipeline.clients.s3.list_object_versions(
        Bucket=pipeline.config.names.bucket, Prefix=prefix
    )
    return [v["Key"] for v in listed.get("Versions", [])]


def test_the_server_drains_what_was_queued_while_it_was_down(
    late_pipeline: LocalPipeline, tmp_path: Path
) -> None:
    pipeline = late_pipeline
    session = english_session("e2e-late")
    poisoned = english_session("e2e-late-poison")
    pipeline.upload_session(session)
    pipeline.upload_chunk(poisoned, 0, body=POISON)
    pipeline.wait_router_idle()
    routes = {str(i.result["status"]) for i in pipeline.invocations if i.result}
    assert routes == {"queued", "manifest_checked"}
    assert pipeline.work_queue_depth() == 4

    # The server comes up, its drainer takes the batch ... and the server dies mid-batch.
    pipeline.start_server()
    queue_url = pipeline.resources.queue_url
    deadline = time.monotonic() + 60
    while read_queue_depth(pipeline.clients.sqs, queue_url).in_flight == 0:
        assert time.monotonic() < deadline, "the drainer never received"
        time.sleep(0.05)
    pipeline.kill_server()
    assert read_queue_depth(pipeline.clients.sqs, queue_url).in_flight > 0  # held, not deleted

    # Up again: what the dead server held comes back after the visibility timeout.
    pipeline.start_server()
    pipeline.wait_queue_drained(timeout_s=300)
    pipeline.wait_router_idle()

    assert pipeline.workers_started == 0
    result = pipeline.fetch_session("e2e-late", tmp_path)
    assert result.stitched
    stitched = SessionTranscript.model_validate_json(result.files["json"].read_bytes())
    assert session.reference_text is not None
    assert wer(session.reference_text, stitched.text) <= WER_BOUND, stitched.text
    layout, bucket = pipeline.layout, pipeline.config.names.bucket
    for index in range(3):
        key = layout.chunk_transcript("e2e-late", index)
        body = pipeline.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert ChunkTranscript.model_validate_json(body).transcribed_by == "server-drainer"
        assert _versions(pipeline, key) == [key]  # written once, even across the kill
    assert _versions(pipeline, layout.session_transcript("e2e-late", "json")) == [
        layout.session_transcript("e2e-late", "json")
    ]

    dead = list(pipeline.peek_queue(pipeline.resources.dead_letter_queue_url))
    assert [m["key"] for m in dead] == ["audio/e2e-late-poison/chunk-0000.ogg"]
    events = sorted(
        (e["detail-type"], e["detail"]["session_id"])
        for e in pipeline.peek_queue(pipeline.resources.notification_queue_url)
    )
    assert events == [
        ("Chunk Failed", "e2e-late-poison"),
        ("Session Transcribed", "e2e-late"),
    ]
    status = pipeline.session_status("e2e-late")
    assert status.transcribed_by() == {"server-drainer": 3}
