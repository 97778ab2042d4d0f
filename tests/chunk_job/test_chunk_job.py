"""The chunk job's steps on moto: fetch (caps, ETag pin, errors), the batch engine helper, the
error kinds and the language seam."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import boto3
import numpy as np
import pytest
from moto import mock_aws

from chunk_job import ChunkJob, Limits
from chunk_job.engine import as_chunk_error, transcribe_each
from chunk_job.errors import (
    ChunkLanguageError,
    ChunkMissingError,
    ChunkTooLargeError,
    ChunkTooLongError,
    ChunkUndecodableError,
    InvalidChunkKeyError,
    StoredTranscriptInvalidError,
    TransientChunkError,
)
from chunk_job.fetch import fetch
from chunk_job.language import chunk_language
from tests.server.chunk_support import FaultyS3, wav_bytes
from transcript_contracts.keys import KeyLayout
from transcript_store import TranscriptStore
from whisper_engine.errors import (
    AudioDecodeError,
    AudioTooLongError,
    TranscriptionError,
    UnsupportedLanguageError,
    WhisperEngineError,
)
from whisper_engine.results import TranscriptionResult

BUCKET = "chunk-bucket"
REGION: Final = "eu-north-1"
KEY = "audio/s1/chunk-0001.wav"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyS3]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        real = boto3.client("s3", region_name=REGION)
        real.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield FaultyS3(real)


def job(s3: Any, **limits: Any) -> ChunkJob:
    return ChunkJob(
        s3=s3,
        store=TranscriptStore(s3),
        layout=KeyLayout(),
        limits=Limits(**{"max_download_bytes": 10**7, "max_audio_seconds": 60.0, **limits}),
        transcribed_by="worker",
        default_language="sv",
    )


def test_fetch_pins_the_etag_and_names_the_file_after_nothing(s3: FaultyS3, tmp_path: Path) -> None:
    data = wav_bytes(1.0)
    etag = s3._real.put_object(Bucket=BUCKET, Key=KEY, Body=data)["ETag"].strip('"')
    fetched = fetch(s3, BUCKET, KEY, max_bytes=10**6, directory=tmp_path)  # type: ignore[arg-type]
    assert fetched.path.read_bytes() == data and fetched.etag == etag
    assert "chunk-0001" not in fetched.path.name and fetched.path.parent == tmp_path

    real_get = s3._real.get_object

    def swapped(**kwargs: Any) -> Any:
        # A re-upload between the HEAD and the GET: the pinned GET answers 412.
        s3._real.put_object(Bucket=BUCKET, Key=KEY, Body=wav_bytes(2.0))
        return real_get(**kwargs)

    s3.faults[("get_object", KEY)] = swapped
    with pytest.raises(TransientChunkError, match="GET"):
        fetch(s3, BUCKET, KEY, max_bytes=10**6, directory=tmp_path)  # type: ignore[arg-type]
    assert [p for p in tmp_path.iterdir() if p != fetched.path] == []  # no partial file left


def test_fetch_errors_are_permanent_or_transient(s3: FaultyS3, tmp_path: Path) -> None:
    with pytest.raises(ChunkMissingError, match="does not exist"):
        fetch(s3, BUCKET, KEY, max_bytes=10**6, directory=tmp_path)  # type: ignore[arg-type]
    s3._real.put_object(Bucket=BUCKET, Key=KEY, Body=wav_bytes(1.0))
    with pytest.raises(ChunkTooLargeError, match="MAX_DOWNLOAD_BYTES"):
        fetch(s3, BUCKET, KEY, max_bytes=100, directory=tmp_path)  # type: ignore[arg-type]
    s3.fail("head_object", KEY)
    with pytest.raises(TransientChunkError, match="EndpointConnectionError"):
        fetch(s3, BUCKET, KEY, max_bytes=10**6, directory=tmp_path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_body_growing_past_the_cap_is_cut(s3: FaultyS3, tmp_path: Path) -> None:
    s3._real.put_object(Bucket=BUCKET, Key=KEY, Body=b"x" * 100)
    real_head = s3._real.head_object
    s3.faults[("head_object", KEY)] = lambda **kw: {**real_head(**kw), "ContentLength": 10}
    with pytest.raises(ChunkTooLargeError, match="grew over"):
        fetch(s3, BUCKET, KEY, max_bytes=50, directory=tmp_path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_keys_and_stored_transcripts(s3: FaultyS3) -> None:
    chunk_job = job(s3)
    with pytest.raises(InvalidChunkKeyError, match="not an audio chunk"):
        chunk_job.chunk(BUCKET, "audio/s1/notes.txt")
    ref = chunk_job.chunk(BUCKET, KEY)
    assert (ref.session_id, ref.index) == ("s1", 1)
    assert chunk_job.stored_transcript(ref) is None
    assert not chunk_job.already_transcribed(ref)
    s3._real.put_object(Bucket=BUCKET, Key=chunk_job.transcript_key(ref), Body=b"{}")
    assert chunk_job.already_transcribed(ref)
    with pytest.raises(StoredTranscriptInvalidError, match="never overwritten"):
        chunk_job.stored_transcript(ref)


def test_fetch_and_decode_reports_each_chunk(s3: FaultyS3) -> None:
    chunk_job = job(s3, max_audio_seconds=1.5)
    keys = [f"audio/s1/chunk-000{i}.wav" for i in range(3)]
    s3._real.put_object(Bucket=BUCKET, Key=keys[0], Body=wav_bytes(1.0))
    s3._real.put_object(Bucket=BUCKET, Key=keys[1], Body=wav_bytes(2.0))
    s3._real.put_object(Bucket=BUCKET, Key=keys[2], Body=b"not audio at all" * 50)
    good, long, bad = chunk_job.fetch_and_decode([chunk_job.chunk(BUCKET, k) for k in keys])
    assert not isinstance(good, Exception) and good is not None
    assert good.samples is not None and good.samples.shape == (16_000,)
    assert isinstance(long, ChunkTooLongError) and "MAX_AUDIO_SECONDS" in long.reason
    assert isinstance(bad, ChunkUndecodableError) and "undecodable" in bad.reason
    assert chunk_job.fetch_and_decode([chunk_job.chunk(BUCKET, keys[0])], stop=lambda: True) == [
        None
    ]


class Engine:
    """Fails any batch holding the audio of length 3 (samples), as an engine error."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def transcribe_many(
        self, audios: Sequence[np.ndarray], *, language: Any = None
    ) -> list[TranscriptionResult]:
        self.calls.append(len(audios))
        if any(a.shape[0] == 3 for a in audios):
            raise AudioDecodeError("bad chunk")
        return [TranscriptionResult("ok", [], "en", a.shape[0] / 16_000, "m") for a in audios]


def test_a_failed_batch_is_retried_one_by_one() -> None:
    engine = Engine()
    audios = [np.zeros(n, dtype=np.float32) for n in (2, 3, 4)]
    outcomes = transcribe_each(engine, audios, ["en"] * 3)
    assert engine.calls == [3, 1, 1, 1]
    assert isinstance(outcomes[1], AudioDecodeError)
    assert [isinstance(o, TranscriptionResult) for o in outcomes] == [True, False, True]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AudioDecodeError("x"), ChunkUndecodableError),
        (AudioTooLongError(9.0, 2.0), ChunkTooLongError),
        (UnsupportedLanguageError("xx", "unknown"), ChunkLanguageError),
        (TranscriptionError("x"), TransientChunkError),
        (WhisperEngineError("x"), TransientChunkError),
    ],
)
def test_engine_errors_map_to_one_of_two_kinds(error: WhisperEngineError, kind: type) -> None:
    assert isinstance(as_chunk_error(error), kind)


def test_the_language_seam(caplog: pytest.LogCaptureFixture) -> None:
    assert chunk_language("s1", "en", "sv") == "en"
    assert chunk_language("s1", None, "auto") == "auto"
    with caplog.at_level(logging.WARNING):
        assert chunk_language("s1", "English", "sv") == "sv"
    assert "'English' of session s1 ignored" in caplog.text
