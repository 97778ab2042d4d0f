"""Queue path end to end: the server is down, chunks go to SQS, the batch worker (the real
`smart-router worker` process) drains them and stitches; a corrupt chunk reaches the DLQ."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smart_router.evaluation import wer
from smart_router.local.pipeline import LocalPipeline, PipelineConfig
from tests.e2e.conftest import english_session
from transcript_contracts.models import SessionTranscript

WER_BOUND = 0.35


@pytest.fixture(scope="module")
def down_pipeline(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPipeline]:
    config = PipelineConfig(
        work_dir=tmp_path_factory.mktemp("local-run-down"),
        model_dir=model_dir,
        start_server=False,
        language="en",
    )
    with LocalPipeline(config) as running:
        yield running


def test_server_down_chunks_are_queued_and_the_worker_stitches_them(
    down_pipeline: LocalPipeline, tmp_path: Path
) -> None:
    pipeline = down_pipeline
    good = english_session("e2e-queued")
    broken = english_session("e2e-queued-corrupt")
    pipeline.upload_session(good)
    pipeline.upload_manifest(broken)
    pipeline.upload_chunk(broken, 0)
    pipeline.upload_chunk(broken, 1, body=b"RIFF....WAVEfmt garbage" * 40)
    pipeline.upload_chunk(broken, 2)
    pipeline.wait_router_idle()

    chunk_results = [
        i.result for i in pipeline.invocations if i.result and "/chunk-" in str(i.result["uri"])
    ]
    assert len(chunk_results) == 6
    assert {(r["status"], r["reason"]) for r in chunk_results} == {("queued", "server_unhealthy")}
    assert pipeline.work_queue_depth() == 6

    # The worker retries the corrupt chunk (RETRY_DELAY_S=1) until the queue's
    # maxReceiveCount (3) redrives it; the drain ends when the queue is empty.
    for _ in range(5):
        assert pipeline.run_worker(timeout_s=300) == 0
        if pipeline.work_queue_depth() == 0:
            break
    assert pipeline.work_queue_depth() == 0

    result = pipeline.fetch_session("e2e-queued", tmp_path)
    assert result.stitched
    transcript = SessionTranscript.model_validate_json(result.files["json"].read_bytes())
    assert good.reference_text is not None
    assert wer(good.reference_text, transcript.text) <= WER_BOUND, transcript.text
    assert transcript.chunks[0].offset_s == 0.0
    # Offsets are stored in milliseconds.
    assert transcript.chunks[1].offset_s == pytest.approx(transcript.chunks[0].duration_s, abs=1e-3)

    dead = list(pipeline.peek_queue(pipeline.resources.dead_letter_queue_url))
    assert [m["key"] for m in dead] == ["audio/e2e-queued-corrupt/chunk-0001.ogg"]
    assert pipeline.chunk_transcript_exists(broken, 0)
    assert pipeline.chunk_transcript_exists(broken, 2)
    assert not pipeline.chunk_transcript_exists(broken, 1)
    assert not pipeline.fetch_session("e2e-queued-corrupt", tmp_path).stitched
    status = pipeline.session_status("e2e-queued-corrupt")
    assert status.counts() == {"transcribed": 2, "queued": 0, "failed": 1, "missing": 0}
    failed = next(c for c in status.chunks if c.state == "failed")
    assert failed.index == 1
    assert failed.reason
    events = [
        e["detail-type"]
        for e in pipeline.peek_queue(pipeline.resources.notification_queue_url)
        if e["detail"].get("session_id") in {"e2e-queued", "e2e-queued-corrupt"}
    ]
    assert sorted(events) == ["Chunk Failed", "Session Transcribed"]
    # The reason is in the worker's log, next to the key.
    logs = "".join(
        p.read_text(encoding="utf-8") for p in (pipeline.config.work_dir / "logs").glob("worker*")
    )
    assert "e2e-queued-corrupt/chunk-0001.ogg" in logs
    assert "decode" in logs.lower()
