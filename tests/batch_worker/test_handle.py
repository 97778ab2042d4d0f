"""One message at a time: validation, skip, temp files, events (P7, P9, P10, P12)."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from batch_worker.errors import QueueError
from batch_worker.queue import ReceivedMessage, WorkQueue
from batch_worker.worker import handle
from tests.batch_worker.support import (
    BUCKET,
    CORRUPT_AUDIO,
    LAYOUT,
    QUEUED_AT,
    Aws,
    FakeEngine,
    RecordingEvents,
    deps,
    settings,
    wav_bytes,
)
from tests.transcript_store.factories import chunk_transcript
from transcript_contracts.models import Manifest, QueueMessage
from transcript_store import StitchOutcome, StorageError, TranscriptStore


def receive_one(aws: Aws) -> Any:
    [message] = WorkQueue(aws.sqs, aws.queue_url).receive(1, 0, 30)
    return message


def test_transcribes_writes_then_deletes(aws: Aws) -> None:
    key = aws.put_chunk("s1", 0, wav_bytes(1.5))
    engine = FakeEngine()
    outcome = handle(receive_one(aws), deps(aws, engine, settings(aws)))

    assert outcome.status == "transcribed" and outcome.written and outcome.deleted
    stored = aws.json(LAYOUT.chunk_transcript("s1", 0))
    assert stored["source"]["key"] == key
    assert stored["source"]["etag"] == aws.s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    assert stored["duration_s"] == pytest.approx(1.5)
    assert stored["text"] == "tone of 1.5 seconds"
    assert aws.counts() == (0, 0)
    assert engine.languages == [["en"]]


def test_manifest_language_is_used(aws: Aws) -> None:
    aws.put_manifest("s1", 2, language="sv")
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    engine = FakeEngine()
    handle(receive_one(aws), deps(aws, engine, settings(aws)))
    assert engine.languages == [["sv"]]


def test_existing_transcript_is_skipped_and_deleted(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    existing = chunk_transcript("s1", 0, bucket=BUCKET)
    aws.s3.put_object(
        Bucket=BUCKET, Key=LAYOUT.chunk_transcript("s1", 0), Body=existing.model_dump_json()
    )
    engine = FakeEngine()
    outcome = handle(receive_one(aws), deps(aws, engine, settings(aws)))

    assert outcome.status == "skipped" and outcome.deleted and not outcome.written
    assert engine.calls == []
    assert aws.json(LAYOUT.chunk_transcript("s1", 0))["text"] == existing.text
    assert aws.counts() == (0, 0)


def test_skip_stitches_a_session_left_unstitched_by_a_crash(aws: Aws) -> None:
    """A crash after the write but before the stitch heals on redelivery."""
    aws.put_manifest("s1", 1)
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    existing = chunk_transcript("s1", 0, bucket=BUCKET)
    aws.s3.put_object(
        Bucket=BUCKET, Key=LAYOUT.chunk_transcript("s1", 0), Body=existing.model_dump_json()
    )
    events = RecordingEvents()
    outcome = handle(receive_one(aws), deps(aws, FakeEngine(), settings(aws), events=events))
    assert outcome.status == "skipped"
    assert outcome.stitch is not None and outcome.stitch.status == "stitched"
    assert [e.session_id for e in events.stitched] == ["s1"]
    assert LAYOUT.session_transcript("s1") in aws.keys("transcripts/s1/")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not a queue message"),
        (json.dumps({"bucket": BUCKET}), "not a queue message"),
        ("KEY:audio/s1/notes.txt", "not an audio chunk"),
        ("KEY:audio/s1/chunk-0003.wav|INDEX:4", "the message says"),
        ("BUCKET:someone-elses-bucket", "is not BUCKET_NAME"),
    ],
)
def test_invalid_messages_are_logged_and_left_for_redrive(
    aws: Aws, caplog: pytest.LogCaptureFixture, body: str, reason: str
) -> None:
    if body.startswith(("KEY:", "BUCKET:")):
        fields = dict(part.split(":", 1) for part in body.split("|"))
        message = QueueMessage(
            bucket=fields.get("BUCKET", BUCKET),
            key=fields.get("KEY", "audio/s1/chunk-0003.wav"),
            etag="abc",
            session_id="s1",
            chunk_index=int(fields.get("INDEX", "3")),
            enqueued_at=QUEUED_AT,
            reason="forced",
        )
        body = message.to_body()
    aws.send_raw(body)
    engine = FakeEngine()
    with caplog.at_level(logging.ERROR):
        outcome = handle(receive_one(aws), deps(aws, engine, settings(aws, retry_delay_s=0)))

    assert outcome.status == "invalid" and not outcome.deleted
    assert outcome.reason is not None and reason in outcome.reason
    assert any(reason in r.getMessage() for r in caplog.records)
    assert engine.calls == []
    # Not deleted: visible again (retry delay 0) so redrive counts it towards the DLQ.
    assert aws.counts() == (1, 0)


def test_undecodable_audio_is_reported_and_not_deleted(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    key = aws.put_chunk("s1", 0, CORRUPT_AUDIO, ext="mp3")
    events = RecordingEvents()
    with caplog.at_level(logging.ERROR):
        outcome = handle(
            receive_one(aws),
            deps(aws, FakeEngine(), settings(aws, retry_delay_s=0), events=events),
        )
    assert outcome.status == "failed" and not outcome.deleted
    assert outcome.reason is not None and "undecodable" in outcome.reason
    assert [(b, k) for b, k, _ in events.failed] == [(BUCKET, key)]
    assert any("undecodable" in r.getMessage() for r in caplog.records)
    assert aws.keys("transcripts/") == []
    assert aws.counts() == (1, 0)


def test_audio_is_downloaded_to_a_temp_file_never_named_after_the_key(aws: Aws) -> None:
    aws.put_chunk("session-name", 7, wav_bytes(1.0))
    seen: list[Path] = []

    def decode(path: Path, max_s: float) -> np.ndarray:
        seen.append(path)
        assert path.is_file()
        return np.zeros(16_000, dtype=np.float32)

    handle(receive_one(aws), deps(aws, FakeEngine(), settings(aws), decode=decode))
    [path] = seen
    assert "session-name" not in str(path) and "chunk-0007" not in str(path)
    assert str(path).startswith(tempfile.gettempdir())
    assert not path.exists()


def test_audio_over_the_download_cap_fails_without_transcription(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(2.0))
    engine = FakeEngine()
    outcome = handle(receive_one(aws), deps(aws, engine, settings(aws, max_download_bytes=1000)))
    assert outcome.status == "failed"
    assert outcome.reason is not None and "MAX_DOWNLOAD_BYTES" in outcome.reason
    assert engine.calls == []


def test_a_failing_event_sink_does_not_stop_the_work(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(RecordingEvents):
        def session_stitched(
            self,
            outcome: StitchOutcome,
            *,
            bucket: str | None = None,
            manifest: Manifest | None = None,
        ) -> None:
            raise RuntimeError("notifier down")

    aws.put_manifest("s1", 1)
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    outcome = handle(receive_one(aws), deps(aws, FakeEngine(), settings(aws), events=Broken()))
    assert outcome.deleted and outcome.stitch is not None
    assert outcome.stitch.status == "stitched"
    assert any("event sink failed" in r.getMessage() for r in caplog.records)


# -- P10: delete only after the durable write -----------------------------------------------


class FailingWrites(TranscriptStore):
    def write_chunk_transcript(self, bucket: str, transcript: Any, layout: Any) -> bool:
        raise StorageError("PUT", bucket, "transcripts/x", code="InternalError", status=500)


def test_a_failed_transcript_write_keeps_the_message(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    worker_deps = deps(aws, FakeEngine(), settings(aws, retry_delay_s=0))
    worker_deps.store = FailingWrites(aws.s3)
    outcome = handle(receive_one(aws), worker_deps)
    assert outcome.status == "failed" and not outcome.deleted
    assert outcome.reason is not None and "transcript write" in outcome.reason
    assert aws.keys("transcripts/") == []
    assert aws.counts() == (1, 0)  # back in the queue for another try


def test_a_transcript_written_meanwhile_412_still_deletes(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    other = chunk_transcript("s1", 0, bucket=BUCKET, text="written by the server first")

    def server_wins(call: int, audios: Any) -> None:
        aws.s3.put_object(
            Bucket=BUCKET, Key=LAYOUT.chunk_transcript("s1", 0), Body=other.model_dump_json()
        )

    outcome = handle(receive_one(aws), deps(aws, FakeEngine(hook=server_wins), settings(aws)))
    assert outcome.status == "transcribed" and not outcome.written and outcome.deleted
    assert aws.json(LAYOUT.chunk_transcript("s1", 0))["text"] == other.text
    assert aws.counts() == (0, 0)


class FlakyDeletes(WorkQueue):
    def __init__(self, aws: Aws, failures: int) -> None:
        super().__init__(aws.sqs, aws.queue_url)
        self.failures = failures
        self.attempts = 0

    def delete(self, message: ReceivedMessage) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise QueueError("DeleteMessage", "ServiceUnavailable: try again")
        super().delete(message)


def test_a_failed_delete_is_retried(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    queue = FlakyDeletes(aws, failures=1)
    worker_deps = deps(aws, FakeEngine(), settings(aws))
    worker_deps.queue = queue
    outcome = handle(receive_one(aws), worker_deps)
    assert outcome.deleted and queue.attempts == 2
    assert aws.counts() == (0, 0)


def test_a_delete_that_keeps_failing_is_healed_by_the_redelivery(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    engine = FakeEngine()
    worker_deps = deps(aws, engine, settings(aws))
    worker_deps.queue = FlakyDeletes(aws, failures=99)
    [message] = WorkQueue(aws.sqs, aws.queue_url).receive(1, 0, 1)
    outcome = handle(message, worker_deps)
    assert outcome.status == "transcribed" and not outcome.deleted
    assert aws.counts() == (0, 1)

    time.sleep(1.1)  # the visibility runs out: the message comes back
    again = handle(receive_one(aws), deps(aws, engine, settings(aws)))
    assert again.status == "skipped" and again.deleted
    assert engine.calls == [1]  # transcribed once
    assert aws.counts() == (0, 0)


# -- P18: the worker's duration cap ---------------------------------------------------------


def test_audio_over_the_duration_cap_fails_without_transcription(aws: Aws) -> None:
    key = aws.put_chunk("s1", 0, wav_bytes(3.0))
    engine, events = FakeEngine(), RecordingEvents()
    outcome = handle(
        receive_one(aws),
        deps(aws, engine, settings(aws, max_audio_seconds=2.0, retry_delay_s=0), events=events),
    )
    assert outcome.status == "failed" and not outcome.deleted
    assert outcome.reason is not None and "MAX_AUDIO_SECONDS" in outcome.reason
    assert [(b, k) for b, k, _ in events.failed] == [(BUCKET, key)]
    assert engine.calls == []
    assert aws.keys("transcripts/") == []


def test_the_worker_records_its_path(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    handle(receive_one(aws), deps(aws, FakeEngine(), settings(aws)))
    assert aws.json(LAYOUT.chunk_transcript("s1", 0))["transcribed_by"] == "worker"


# -- FETCH_TIMEOUT_S: the fetch has an overall deadline, as on the server --------------------


class SlowHeads:
    """The S3 client with every HEAD taking ``delay_s`` (a stalled, not a failing, S3)."""

    def __init__(self, s3: Any, delay_s: float) -> None:
        self._s3 = s3
        self._delay_s = delay_s

    def head_object(self, **kwargs: Any) -> Any:
        time.sleep(self._delay_s)
        return self._s3.head_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_a_fetch_over_fetch_timeout_fails_the_chunk_and_keeps_the_message(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    engine = FakeEngine()
    worker_deps = deps(aws, engine, settings(aws, fetch_timeout_s=0.2, retry_delay_s=0))
    worker_deps.s3 = cast(Any, SlowHeads(aws.s3, delay_s=0.5))
    outcome = handle(receive_one(aws), worker_deps)
    assert outcome.status == "failed" and not outcome.deleted
    assert outcome.reason is not None and "FETCH_TIMEOUT_S" in outcome.reason
    assert engine.calls == []
    assert aws.keys("transcripts/") == []
    assert aws.counts() == (1, 0)  # transient: back in the queue for another try


def test_the_same_slow_fetch_within_fetch_timeout_is_transcribed(aws: Aws) -> None:
    aws.put_chunk("s1", 0, wav_bytes(1.0))
    worker_deps = deps(aws, FakeEngine(), settings(aws, fetch_timeout_s=5.0))
    worker_deps.s3 = cast(Any, SlowHeads(aws.s3, delay_s=0.5))
    outcome = handle(receive_one(aws), worker_deps)
    assert outcome.status == "transcribed" and outcome.deleted
