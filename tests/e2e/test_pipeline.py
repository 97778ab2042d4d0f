"""End to end on one machine: S3 upload → EventBridge rule → router handler → server or queue →
worker → stitched session transcript, with real weights on CPU."""

from __future__ import annotations

import json
from pathlib import Path

from smart_router.evaluation import wer
from smart_router.local.lambda_runtime import Invocation
from smart_router.local.pipeline import LocalPipeline
from tests.e2e.conftest import english_session
from transcript_contracts.models import ChunkTranscript, SessionTranscript

# Whisper base on espeak English measures 0.17 on this session; the bound leaves room for
# decoder differences across CPUs without letting a broken pipeline (order, offsets) pass.
WER_BOUND = 0.35


def _invocations(pipeline: LocalPipeline, session_id: str) -> list[Invocation]:
    def key(invocation: Invocation) -> str:
        return str(invocation.event.get("detail", {}).get("object", {}).get("key", ""))

    return [i for i in pipeline.invocations if f"/{session_id}/" in key(i)]


def _session_transcript(pipeline: LocalPipeline, session_id: str) -> SessionTranscript:
    body = pipeline.clients.s3.get_object(
        Bucket=pipeline.config.names.bucket,
        Key=pipeline.layout.session_transcript(session_id),
    )["Body"].read()
    return SessionTranscript.model_validate_json(body)


def _chunk_transcripts(
    pipeline: LocalPipeline, session_id: str, count: int
) -> list[ChunkTranscript]:
    out = []
    for index in range(count):
        body = pipeline.clients.s3.get_object(
            Bucket=pipeline.config.names.bucket,
            Key=pipeline.layout.chunk_transcript(session_id, index),
        )["Body"].read()
        out.append(ChunkTranscript.model_validate_json(body))
    return out


def _assert_stitched_correctly(pipeline: LocalPipeline, session_id: str, tmp_path: Path) -> None:
    session = english_session(session_id)
    result = pipeline.fetch_session(session_id, tmp_path)
    assert result.stitched, f"session {session_id} was not stitched"
    assert set(result.files) == {"json", "txt", "srt", "vtt"}
    transcript = _session_transcript(pipeline, session_id)
    reference = session.reference_text
    assert reference is not None
    assert wer(reference, transcript.text) <= WER_BOUND, transcript.text
    # Offsets are the sums of the real decoded chunk durations (docs/design.md §2).
    chunks = _chunk_transcripts(pipeline, session_id, len(session.chunks))
    offset = 0.0
    for stitched, chunk in zip(transcript.chunks, chunks, strict=True):
        assert abs(stitched.offset_s - offset) < 1e-3
        for moved, original in zip(stitched.segments, chunk.segments, strict=True):
            assert abs(moved.start - (original.start + offset)) < 1e-3
        offset += chunk.duration_s
    assert abs(transcript.duration_s - offset) < 1e-3


def test_direct_path_stitches_a_session(pipeline: LocalPipeline, tmp_path: Path) -> None:
    session = english_session("e2e-direct")
    pipeline.upload_session(session)
    pipeline.wait_router_idle()

    routes = [i.result["status"] for i in _invocations(pipeline, "e2e-direct") if i.result]
    assert sorted(routes) == ["forwarded"] * 3 + ["manifest_checked"]
    stitched = [
        i
        for i in _invocations(pipeline, "e2e-direct")
        if i.result and (i.result.get("stitch") or {}).get("status") == "stitched"
    ]
    assert len(stitched) == 1
    _assert_stitched_correctly(pipeline, "e2e-direct", tmp_path)


def test_manifest_arriving_last_triggers_the_stitch(
    pipeline: LocalPipeline, tmp_path: Path
) -> None:
    session = english_session("e2e-manifest-last")
    pipeline.upload_session(session, manifest="none")
    pipeline.wait_router_idle()
    assert not pipeline.fetch_session("e2e-manifest-last", tmp_path).stitched

    pipeline.upload_manifest(session)
    pipeline.wait_router_idle()

    manifest_runs = [
        i.result
        for i in _invocations(pipeline, "e2e-manifest-last")
        if i.result and i.result["status"] == "manifest_checked"
    ]
    assert [r["stitch"]["status"] for r in manifest_runs] == ["stitched"]
    _assert_stitched_correctly(pipeline, "e2e-manifest-last", tmp_path)


def test_duplicate_events_cause_one_forward(pipeline: LocalPipeline, tmp_path: Path) -> None:
    session = english_session("e2e-duplicates")
    pipeline.upload_session(session)
    pipeline.wait_router_idle()
    first = [i for i in _invocations(pipeline, "e2e-duplicates") if i.result]
    for invocation in first:
        pipeline.redeliver(invocation.event)
        pipeline.redeliver(invocation.event)
    pipeline.wait_router_idle()

    runs = [i.result for i in _invocations(pipeline, "e2e-duplicates") if i.result]
    chunk_runs = [r for r in runs if r["uri"] and "/chunk-" in r["uri"]]
    assert len(chunk_runs) == 9
    assert sum(r["status"] == "forwarded" and not r["duplicate"] for r in chunk_runs) == 3
    assert sum(not r["duplicate"] for r in chunk_runs) == 3
    # A duplicate replays the first delivery's stored outcome, stitch included: count firsts.
    stitched = [
        r
        for r in runs
        if not r["duplicate"] and (r.get("stitch") or {}).get("status") == "stitched"
    ]
    assert len(stitched) == 1
    _assert_stitched_correctly(pipeline, "e2e-duplicates", tmp_path)


def test_corrupt_chunk_fails_with_its_reason_and_the_rest_is_transcribed(
    pipeline: LocalPipeline, tmp_path: Path
) -> None:
    session = english_session("e2e-corrupt")
    pipeline.upload_manifest(session)
    pipeline.upload_chunk(session, 0)
    pipeline.upload_chunk(session, 1, body=b"this is not audio at all " * 64)
    pipeline.upload_chunk(session, 2)
    pipeline.wait_router_idle()

    assert pipeline.chunk_transcript_exists(session, 0)
    assert not pipeline.chunk_transcript_exists(session, 1)
    assert pipeline.chunk_transcript_exists(session, 2)
    failures = [
        record
        for record in pipeline.peek_queue(pipeline.resources.router_failure_queue_url)
        if "/e2e-corrupt/" in record["requestPayload"]["detail"]["object"]["key"]
    ]
    assert len(failures) == 1
    record = failures[0]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["detail"]["object"]["key"].endswith("chunk-0001.ogg")
    assert "ServerRejectedError" in record["responsePayload"]["errorType"]
    assert "HTTP 415" in record["responsePayload"]["errorMessage"]
    assert "cannot decode audio" in record["responsePayload"]["errorMessage"]
    # The session is not stitched; its stitch check says what is missing.
    assert not pipeline.fetch_session("e2e-corrupt", tmp_path).stitched
    outcomes = [
        i.result["stitch"]
        for i in _invocations(pipeline, "e2e-corrupt")
        if i.result and i.result.get("stitch")
    ]
    assert outcomes
    assert all(o["status"] == "incomplete" for o in outcomes)
    assert json.dumps(outcomes[-1]["missing"]) == "[1]"
    # `smart-router status` reports it: incomplete, chunk 1 failed with the server's reason.
    status = pipeline.session_status("e2e-corrupt")
    assert not status.stitched
    assert status.counts() == {"transcribed": 2, "queued": 0, "failed": 1, "missing": 0}
    failed = next(c for c in status.chunks if c.state == "failed")
    assert failed.index == 1
    assert failed.reason is not None
    assert "cannot decode audio" in failed.reason
    # ... and one `Chunk Failed` event went out, although Lambda invoked three times.
    events = [
        e
        for e in pipeline.peek_queue(pipeline.resources.notification_queue_url)
        if e["detail"].get("session_id") == "e2e-corrupt"
    ]
    assert [e["detail-type"] for e in events] == ["Chunk Failed"]
