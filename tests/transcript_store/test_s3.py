from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber
from mypy_boto3_s3 import S3Client

from tests.transcript_store.factories import BUCKET, chunk_transcript, manifest
from transcript_contracts.errors import StitchError
from transcript_contracts.formats import render
from transcript_contracts.keys import KeyLayout
from transcript_contracts.stitcher import stitch
from transcript_store import InvalidDocumentError, StitchOutcome, StorageError, TranscriptStore
from transcript_store.s3 import CONFLICT_RETRY_WAITS_S, SESSION_FORMATS


@pytest.fixture
def stubbed() -> Iterator[tuple[TranscriptStore, Stubber, list[float]]]:
    """A store over a stubbed client: for answers moto cannot give (403, 409, 500)."""
    client = boto3.client("s3", region_name="eu-north-1")
    sleeps: list[float] = []
    with Stubber(client) as stub:
        yield TranscriptStore(client, sleep=sleeps.append), stub, sleeps
        stub.assert_no_pending_responses()


def put_manifest(s3: S3Client, session_id: str, chunk_count: int) -> None:
    body = manifest(session_id, chunk_count).model_dump_json().encode()
    s3.put_object(Bucket=BUCKET, Key=f"audio/{session_id}/manifest.json", Body=body)


def put_chunks(store: TranscriptStore, layout: KeyLayout, session_id: str, *indices: int) -> None:
    for i in indices:
        assert store.write_chunk_transcript(BUCKET, chunk_transcript(session_id, i), layout)


# -- HEAD (P3) ------------------------------------------------------------------------------


def test_exists_is_a_head_200_true_404_false(s3: S3Client, store: TranscriptStore) -> None:
    assert store.transcript_exists(BUCKET, "transcripts/s1/chunk-0000.json") is False
    s3.put_object(Bucket=BUCKET, Key="transcripts/s1/chunk-0000.json", Body=b"{}")
    assert store.transcript_exists(BUCKET, "transcripts/s1/chunk-0000.json") is True


@pytest.mark.parametrize(("status", "code"), [(403, "403"), (500, "500"), (400, "400")])
def test_exists_raises_on_anything_but_200_or_404(
    stubbed: tuple[TranscriptStore, Stubber, list[float]], status: int, code: str
) -> None:
    store, stub, _ = stubbed
    stub.add_client_error("head_object", service_error_code=code, http_status_code=status)
    with pytest.raises(StorageError) as info:
        store.transcript_exists(BUCKET, "transcripts/s1/chunk-0000.json")
    assert info.value.status == status
    assert "HEAD s3://" in str(info.value)


def test_missing_bucket_is_not_read_as_missing_transcript(store: TranscriptStore) -> None:
    # GET on a missing bucket is a 404 NoSuchBucket: loud, never "no manifest".
    with pytest.raises(StorageError):
        store.get_bytes("no-such-bucket-here", "audio/s1/manifest.json", max_bytes=10)


def test_object_etag_is_unquoted(s3: S3Client, store: TranscriptStore) -> None:
    etag = s3.put_object(Bucket=BUCKET, Key="audio/s1/chunk-0.mp3", Body=b"x")["ETag"]
    assert etag.startswith('"')
    assert store.object_etag(BUCKET, "audio/s1/chunk-0.mp3") == etag.strip('"')


# -- create-only writes (P7) ----------------------------------------------------------------


def test_put_create_only_writes_once(s3: S3Client, store: TranscriptStore) -> None:
    key = "transcripts/s1/session.json"
    assert store.put_create_only(BUCKET, key, b"first", "application/json") is True
    assert store.put_create_only(BUCKET, key, b"second", "application/json") is False
    got = s3.get_object(Bucket=BUCKET, Key=key)
    assert got["Body"].read() == b"first"
    assert got["ContentType"] == "application/json"


def test_put_create_only_concurrent_has_one_winner(s3: S3Client, store: TranscriptStore) -> None:
    key = "transcripts/s1/session.txt"
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def write(n: int) -> None:
        barrier.wait()
        results.append(store.put_create_only(BUCKET, key, b"same", "text/plain"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_put_conflict_409_is_retried(
    stubbed: tuple[TranscriptStore, Stubber, list[float]],
) -> None:
    store, stub, sleeps = stubbed
    for _ in range(2):
        stub.add_client_error(
            "put_object", service_error_code="ConditionalRequestConflict", http_status_code=409
        )
    stub.add_response("put_object", {"ETag": '"abc"'})
    assert store.put_create_only(BUCKET, "transcripts/s/session.json", b"x", "a/b") is True
    assert sleeps == list(CONFLICT_RETRY_WAITS_S[:2])


def test_put_conflict_to_the_end_reads_existing_as_written_by_other(
    stubbed: tuple[TranscriptStore, Stubber, list[float]],
) -> None:
    store, stub, sleeps = stubbed
    for _ in range(len(CONFLICT_RETRY_WAITS_S) + 1):
        stub.add_client_error(
            "put_object", service_error_code="ConditionalRequestConflict", http_status_code=409
        )
    stub.add_response("head_object", {"ETag": '"abc"'})
    assert store.put_create_only(BUCKET, "transcripts/s/session.json", b"x", "a/b") is False
    assert sleeps == list(CONFLICT_RETRY_WAITS_S)


def test_put_conflict_to_the_end_with_nothing_written_raises(
    stubbed: tuple[TranscriptStore, Stubber, list[float]],
) -> None:
    store, stub, _ = stubbed
    for _ in range(len(CONFLICT_RETRY_WAITS_S) + 1):
        stub.add_client_error(
            "put_object", service_error_code="ConditionalRequestConflict", http_status_code=409
        )
    stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
    with pytest.raises(StorageError) as info:
        store.put_create_only(BUCKET, "transcripts/s/session.json", b"x", "a/b")
    assert info.value.status == 409


def test_put_other_errors_raise(stubbed: tuple[TranscriptStore, Stubber, list[float]]) -> None:
    store, stub, _ = stubbed
    stub.add_client_error("put_object", service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(StorageError, match="AccessDenied"):
        store.put_create_only(BUCKET, "transcripts/s/session.json", b"x", "a/b")


# -- documents ------------------------------------------------------------------------------


def test_load_manifest(s3: S3Client, store: TranscriptStore, layout: KeyLayout) -> None:
    assert store.load_manifest(BUCKET, "s1", layout) is None
    put_manifest(s3, "s1", 3)
    loaded = store.load_manifest(BUCKET, "s1", layout)
    assert loaded is not None and loaded.chunk_count == 3


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "document"),
        (b'{"session_id": "s1"}', "chunk_count"),
        (b'{"session_id": "other", "chunk_count": 1}', "names session 'other'"),
        (b'{"session_id": "s1", "chunk_count": 0}', "chunk_count"),
    ],
)
def test_invalid_manifest_is_a_typed_error(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout, body: bytes, reason: str
) -> None:
    s3.put_object(Bucket=BUCKET, Key="audio/s1/manifest.json", Body=body)
    with pytest.raises(InvalidDocumentError) as info:
        store.load_manifest(BUCKET, "s1", layout)
    assert reason in info.value.reason


def test_oversized_manifest_is_refused_unread(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    s3.put_object(Bucket=BUCKET, Key="audio/s1/manifest.json", Body=b" " * (1024 * 1024 + 1))
    with pytest.raises(InvalidDocumentError, match="bytes"):
        store.load_manifest(BUCKET, "s1", layout)


def test_list_indices_parses_keys_and_skips_others(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    put_chunks(store, layout, "s1", 0, 2, 11)
    put_chunks(store, layout, "s10", 1)  # another session sharing the prefix's first letters
    for stray in ("transcripts/s1/session.json", "transcripts/s1/chunk-3.json", "transcripts/s1/x"):
        s3.put_object(Bucket=BUCKET, Key=stray, Body=b"{}")
    assert store.list_chunk_transcript_indices(BUCKET, "s1", layout) == [0, 2, 11]


def test_list_indices_follows_pages(
    stubbed: tuple[TranscriptStore, Stubber, list[float]], layout: KeyLayout
) -> None:
    store, stub, _ = stubbed
    stub.add_response(
        "list_objects_v2",
        {
            "Contents": [{"Key": "transcripts/s1/chunk-0000.json"}],
            "IsTruncated": True,
            "NextContinuationToken": "t",
        },
    )
    stub.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": "transcripts/s1/chunk-0001.json"}], "IsTruncated": False},
        {"Bucket": BUCKET, "Prefix": "transcripts/s1/", "ContinuationToken": "t"},
    )
    assert store.list_chunk_transcript_indices(BUCKET, "s1", layout) == [0, 1]


def test_load_chunk_transcripts_in_order(store: TranscriptStore, layout: KeyLayout) -> None:
    put_chunks(store, layout, "s1", 2, 0, 1)
    loaded = store.load_chunk_transcripts(BUCKET, "s1", layout)
    assert [t.chunk_index for t in loaded] == [0, 1, 2]
    assert loaded[1] == chunk_transcript("s1", 1)


def test_chunk_transcript_in_the_wrong_place_is_invalid(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    body = render(chunk_transcript("s1", 4), "json")
    s3.put_object(Bucket=BUCKET, Key="transcripts/s1/chunk-0001.json", Body=body)
    with pytest.raises(InvalidDocumentError, match="chunk 4"):
        store.load_chunk_transcripts(BUCKET, "s1", layout, [1])


def test_write_chunk_transcript_is_create_only(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    first = chunk_transcript("s1", 0, text="first")
    assert store.write_chunk_transcript(BUCKET, first, layout) is True
    assert store.write_chunk_transcript(BUCKET, chunk_transcript("s1", 0), layout) is False
    body = s3.get_object(Bucket=BUCKET, Key="transcripts/s1/chunk-0000.json")["Body"].read()
    assert body == render(first, "json")


# -- stitching (P8) -------------------------------------------------------------------------


def expected_session_bytes(session_id: str, chunk_count: int) -> dict[str, bytes]:
    session = stitch(
        manifest(session_id, chunk_count),
        [chunk_transcript(session_id, i) for i in range(chunk_count)],
    )
    return {fmt: render(session, fmt) for fmt in SESSION_FORMATS}


def read_session(s3: S3Client, session_id: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for fmt in SESSION_FORMATS:
        key = f"transcripts/{session_id}/session.{fmt}"
        try:
            found[fmt] = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            continue
    return found


def test_stitch_without_manifest(store: TranscriptStore, layout: KeyLayout) -> None:
    put_chunks(store, layout, "s1", 0, 1)
    outcome = store.stitch_session_if_complete(BUCKET, "s1", layout)
    assert outcome.status == "no_manifest"


def count_calls(s3: S3Client, operation: str) -> list[str]:
    calls: list[str] = []
    s3.meta.events.register(f"before-call.s3.{operation}", lambda **kw: calls.append(operation))
    return calls


def test_stitch_incomplete_names_missing(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    put_manifest(s3, "s1", 4)
    put_chunks(store, layout, "s1", 0, 3)
    outcome = store.stitch_session_if_complete(BUCKET, "s1", layout)
    assert (outcome.status, outcome.missing, outcome.missing_count) == ("incomplete", (1, 2), 2)
    assert read_session(s3, "s1") == {}


def test_absent_last_chunk_settles_incomplete_without_listing(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    put_manifest(s3, "s1", 4)
    put_chunks(store, layout, "s1", 0, 1, 2)
    lists = count_calls(s3, "ListObjectsV2")
    heads = count_calls(s3, "HeadObject")
    outcome = store.stitch_session_if_complete(BUCKET, "s1", layout)
    assert (outcome.status, outcome.missing, outcome.missing_count) == ("incomplete", (3,), None)
    assert outcome.to_dict()["missing_count"] is None
    assert (lists, heads) == ([], ["HeadObject"])


def test_known_present_last_chunk_skips_the_probe(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    put_manifest(s3, "s1", 2)
    put_chunks(store, layout, "s1", 1)
    heads = count_calls(s3, "HeadObject")
    outcome = store.stitch_session_if_complete(BUCKET, "s1", layout, known_present=[1])
    assert (outcome.status, outcome.missing) == ("incomplete", (0,))
    assert heads == []


def test_stitch_complete_writes_all_four_once(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    put_manifest(s3, "s1", 3)
    put_chunks(store, layout, "s1", 0, 1, 2)
    first = store.stitch_session_if_complete(BUCKET, "s1", layout)
    assert first.status == "stitched"
    assert first.written == tuple(f"transcripts/s1/session.{f}" for f in SESSION_FORMATS)
    assert read_session(s3, "s1") == expected_session_bytes("s1", 3)
    again = store.stitch_session_if_complete(BUCKET, "s1", layout)
    assert (again.status, again.written) == ("already_stitched", ())
    head = s3.head_object(Bucket=BUCKET, Key="transcripts/s1/session.vtt")
    assert head["ContentType"].startswith("text/vtt")
    doc = json.loads(read_session(s3, "s1")["json"])
    assert doc["chunk_count"] == 3 and [c["offset_s"] for c in doc["chunks"]] == [0, 10, 20]


def test_stitch_heals_a_crash_between_writes(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    put_manifest(s3, "s1", 2)
    put_chunks(store, layout, "s1", 0, 1)
    expected = expected_session_bytes("s1", 2)
    # A previous stitcher wrote session.json and died before the renderings.
    s3.put_object(Bucket=BUCKET, Key="transcripts/s1/session.json", Body=expected["json"])
    outcome = store.stitch_session_if_complete(BUCKET, "s1", layout)
    assert outcome.status == "already_stitched"
    assert outcome.written == tuple(f"transcripts/s1/session.{f}" for f in ("txt", "srt", "vtt"))
    assert read_session(s3, "s1") == expected


def test_stitch_race_writes_one_session(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    put_manifest(s3, "s1", 3)
    put_chunks(store, layout, "s1", 0, 1, 2)
    barrier = threading.Barrier(4)
    statuses: list[str] = []

    def run() -> None:
        barrier.wait()
        statuses.append(store.stitch_session_if_complete(BUCKET, "s1", layout).status)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == ["already_stitched"] * 3 + ["stitched"]
    assert read_session(s3, "s1") == expected_session_bytes("s1", 3)


def test_stitch_with_inconsistent_chunks_raises_stitch_error(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    s3.put_object(
        Bucket=BUCKET,
        Key="audio/s1/manifest.json",
        # Chunk 1 starts at 20 + 10 s, past chunk 2's given offset.
        Body=json.dumps(
            {
                "session_id": "s1",
                "chunk_count": 3,
                "chunks": [{"index": 0, "offset_s": 20}, {"index": 2, "offset_s": 25}],
            }
        ).encode(),
    )
    put_chunks(store, layout, "s1", 0, 1, 2)
    with pytest.raises(StitchError):
        store.stitch_session_if_complete(BUCKET, "s1", layout)


def test_transcripts_past_chunk_count_are_not_stitched(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    put_manifest(s3, "s1", 1)
    put_chunks(store, layout, "s1", 0, 5)
    assert store.stitch_session_if_complete(BUCKET, "s1", layout).status == "stitched"
    assert read_session(s3, "s1") == expected_session_bytes("s1", 1)


def test_outcome_dict_stays_small_for_huge_sessions(
    s3: S3Client, store: TranscriptStore, layout: KeyLayout
) -> None:
    put_manifest(s3, "big", 100_000)
    put_chunks(store, layout, "big", 0, 99_999)
    outcome = store.stitch_session_if_complete(BUCKET, "big", layout)
    assert len(outcome.missing) == 99_998
    data = outcome.to_dict()
    assert data["missing"] == list(range(1, 21)) and data["missing_count"] == 99_998
    assert len(json.dumps(data)) < 300
    back = StitchOutcome.from_dict(data)
    assert (back.missing, back.missing_count) == (tuple(range(1, 21)), 99_998)
    assert back.to_dict() == data
