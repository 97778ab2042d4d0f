"""`smart-router status` against moto S3 and SQS: complete, partial, failed and unknown
sessions; the work queue is never received from, the DLQ is peeked and released at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import boto3
import botocore.session
import pytest
from moto import mock_aws
from mypy_boto3_s3 import S3Client
from mypy_boto3_sqs import SQSClient

from notifications import EventPublisher, Notifier
from smart_router.cli import main
from tests.support.queues import create_work_queues
from tests.support.settings import clear_settings_env
from tests.transcript_store.factories import BUCKET, chunk_transcript, manifest
from transcript_contracts.keys import KeyLayout
from transcript_contracts.models import QueueMessage
from transcript_store import TranscriptStore

REGION: Final = "eu-north-1"
SESSION = boto3.session.Session(botocore_session=botocore.session.get_session())


@dataclass
class Rig:
    s3: S3Client
    sqs: SQSClient
    queue_url: str
    dlq_url: str
    store: TranscriptStore
    layout: KeyLayout

    def audio(self, session_id: str, *indices: int) -> None:
        for i in indices:
            self.s3.put_object(Bucket=BUCKET, Key=f"audio/{session_id}/chunk-{i}.mp3", Body=b"a")

    def manifest(self, session_id: str, chunk_count: int) -> None:
        doc = manifest(session_id, chunk_count)
        key = self.layout.manifest(session_id)
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=doc.model_dump_json().encode())

    def transcripts(self, session_id: str, *indices: int) -> None:
        for i in indices:
            self.store.write_chunk_transcript(BUCKET, chunk_transcript(session_id, i), self.layout)

    def message(self, session_id: str, index: int) -> str:
        return QueueMessage(
            bucket=BUCKET,
            key=f"audio/{session_id}/chunk-{index}.mp3",
            etag="e",
            session_id=session_id,
            chunk_index=index,
            enqueued_at=datetime(2026, 11, 21, tzinfo=UTC),
            reason="server_unhealthy",
        ).to_body()


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Rig]:
    clear_settings_env(monkeypatch)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "COLUMNS": "200",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    with mock_aws():
        s3 = SESSION.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sqs = SESSION.client("sqs", region_name=REGION)
        queue_url, dlq_url = create_work_queues(sqs)
        monkeypatch.setenv("BUCKET_NAME", BUCKET)
        monkeypatch.setenv("QUEUE_URL", queue_url)
        monkeypatch.setenv("DLQ_URL", dlq_url)
        yield Rig(s3, sqs, queue_url, dlq_url, TranscriptStore(s3), KeyLayout())


def status_json(capsys: pytest.CaptureFixture[str], session_id: str) -> dict[str, Any]:
    assert main(["status", session_id, "--json", "--dlq-wait-s", "0"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def states(result: dict[str, Any]) -> list[tuple[int, str]]:
    return [(c["index"], c["state"]) for c in result["chunks"]]


def test_complete_session(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig.manifest("c1", 3)
    rig.audio("c1", 0, 1, 2)
    rig.transcripts("c1", 0, 1, 2)
    assert rig.store.stitch_session_if_complete(BUCKET, "c1", rig.layout).status == "stitched"
    result = status_json(capsys, "c1")
    assert states(result) == [(0, "transcribed"), (1, "transcribed"), (2, "transcribed")]
    assert result["manifest"] == {
        "present": True,
        "chunk_count": 3,
        "language": "sv",
        "error": None,
    }
    assert result["stitched"] is True
    assert result["session_keys"] == [f"transcripts/c1/session.{f}" for f in sorted(
        ("json", "txt", "srt", "vtt")
    )]  # fmt: skip
    assert result["counts"] == {"transcribed": 3, "queued": 0, "failed": 0, "missing": 0}
    assert result["chunks"][1]["transcript_key"] == "transcripts/c1/chunk-0001.json"


def test_partial_session_never_receives_from_the_work_queue(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    rig.manifest("p1", 4)
    rig.audio("p1", 0, 1, 2)
    rig.transcripts("p1", 0)
    rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody=rig.message("p1", 1))
    result = status_json(capsys, "p1")
    assert states(result) == [(0, "transcribed"), (1, "queued"), (2, "queued"), (3, "missing")]
    assert result["stitched"] is False
    assert result["chunks"][3]["reason"] == "no audio uploaded"
    assert (result["work_queue"]["visible"], result["work_queue"]["in_flight"]) == (1, 0)
    # The worker gets the message as if status had never run: first receive, visible at once.
    (message,) = rig.sqs.receive_message(
        QueueUrl=rig.queue_url, MessageSystemAttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"


def test_failed_session_shows_reasons_and_releases_the_dead_letters(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    rig.manifest("f1", 4)
    rig.audio("f1", 0, 1, 2, 3)
    rig.transcripts("f1", 0)
    # Chunk 1: given up on by the worker (Chunk Failed record) and in the DLQ.
    notifier = Notifier(
        bucket=BUCKET,
        layout=rig.layout,
        s3=rig.s3,
        publisher=EventPublisher(lambda: SESSION.client("events", region_name=REGION)),
    )
    notifier.chunk_failed(BUCKET, "audio/f1/chunk-1.mp3", "undecodable audio: no frames")
    rig.sqs.send_message(QueueUrl=rig.dlq_url, MessageBody=rig.message("f1", 1))
    # Chunk 2: only in the DLQ. Another session's dead letter is not counted.
    rig.sqs.send_message(QueueUrl=rig.dlq_url, MessageBody=rig.message("f1", 2))
    rig.sqs.send_message(QueueUrl=rig.dlq_url, MessageBody=rig.message("other", 0))
    result = status_json(capsys, "f1")
    assert states(result) == [(0, "transcribed"), (1, "failed"), (2, "failed"), (3, "queued")]
    reason_1, reason_2 = result["chunks"][1]["reason"], result["chunks"][2]["reason"]
    assert "undecodable audio: no frames" in reason_1 and "dead-letter queue" in reason_1
    assert "dead-letter queue" in reason_2 and "server unhealthy" in reason_2
    dlq = result["dead_letter_queue"]
    assert (dlq["peeked"], dlq["session_messages"]) == (3, 2)
    # Released at once: all three are visible again right away.
    visible = rig.sqs.get_queue_attributes(
        QueueUrl=rig.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert visible == "3"

    assert main(["status", "f1", "--dlq-wait-s", "0"]) == 0
    out = capsys.readouterr().out
    assert "Session f1 in s3://" in out
    assert "present: 4 chunk(s), language sv" in out
    assert "1 transcribed, 1 queued, 2 failed, 0 missing" in out
    assert "undecodable audio: no frames" in out
    assert "3 peeked, 2 of this session" in out


def test_session_without_manifest_shows_gaps(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig.audio("n1", 0, 2)
    rig.transcripts("n1", 0)
    result = status_json(capsys, "n1")
    assert result["manifest"]["present"] is False
    assert states(result) == [(0, "transcribed"), (1, "missing"), (2, "queued")]
    assert main(["status", "n1", "--dlq-wait-s", "0"]) == 0
    assert "absent (no session transcript until it arrives)" in capsys.readouterr().out


def test_invalid_manifest_is_reported(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig.s3.put_object(Bucket=BUCKET, Key="audio/i1/manifest.json", Body=b'{"chunk_count": 0}')
    result = status_json(capsys, "i1")
    assert result["manifest"]["present"] is False
    assert "session_id" in result["manifest"]["error"]


def test_unknown_session_and_bad_arguments(
    rig: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["status", "nobody", "--dlq-wait-s", "0"]) == 0
    assert "nothing found" in capsys.readouterr().out
    assert main(["status", "../etc"]) == 2
    assert "session id must match" in capsys.readouterr().err
    monkeypatch.delenv("BUCKET_NAME")
    assert main(["status", "s1"]) == 2
    assert "BUCKET_NAME" in capsys.readouterr().err


def test_works_from_s3_alone(
    rig: Rig, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUEUE_URL")
    monkeypatch.delenv("DLQ_URL")
    rig.manifest("s3only", 1)
    rig.audio("s3only", 0)
    result = status_json(capsys, "s3only")
    assert states(result) == [(0, "queued")]
    assert (result["work_queue"], result["dead_letter_queue"]) == (None, None)
