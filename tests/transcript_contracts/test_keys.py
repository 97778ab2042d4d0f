from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transcript_contracts.errors import KeyGrammarError
from transcript_contracts.keys import (
    AUDIO_EXTENSIONS,
    MAX_CHUNK_INDEX,
    AudioChunkKey,
    ChunkTranscriptKey,
    KeyLayout,
    ManifestKey,
    SessionTranscriptKey,
    parse_s3_uri,
)

LAYOUT = KeyLayout()
session_ids = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")
indices = st.integers(min_value=0, max_value=MAX_CHUNK_INDEX)
extensions = st.sampled_from(AUDIO_EXTENSIONS)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("audio/s1/chunk-0003.mp3", AudioChunkKey("s1", 3, "mp3", "audio/s1/chunk-0003.mp3")),
        ("audio/s1/chunk-3.mp3", AudioChunkKey("s1", 3, "mp3", "audio/s1/chunk-3.mp3")),
        ("audio/A-b_9/chunk-0.webm", AudioChunkKey("A-b_9", 0, "webm", "audio/A-b_9/chunk-0.webm")),
        ("audio/s1/manifest.json", ManifestKey("s1", "audio/s1/manifest.json")),
        (
            "transcripts/s1/chunk-0012.json",
            ChunkTranscriptKey("s1", 12, "transcripts/s1/chunk-0012.json"),
        ),
        (
            "transcripts/s1/chunk-12345.json",
            ChunkTranscriptKey("s1", 12345, "transcripts/s1/chunk-12345.json"),
        ),
        (
            "transcripts/s1/session.vtt",
            SessionTranscriptKey("s1", "vtt", "transcripts/s1/session.vtt"),
        ),
    ],
)
def test_parses_every_kind_of_key(key: str, expected: object) -> None:
    assert LAYOUT.parse(key) == expected


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("audio/../etc/chunk-1.mp3", "traversal"),
        ("audio/./s1/chunk-1.mp3", "traversal"),
        ("audio/s1/../chunk-1.mp3", "traversal"),
        ("/audio/s1/chunk-1.mp3", "starts with '/'"),
        ("audio//chunk-1.mp3", "empty path segment"),
        ("audio/s1/chunk-1.mp3/", "empty path segment"),
        ("audio/sé/chunk-1.mp3", "unicode"),
        ("audio/s1/chunk-1\u200b.mp3", "unicode"),
        ("audio/s1/chunk-1.mp3\n", "control"),
        ("audio/s\x001/chunk-1.mp3", "control"),
        ("audio/s1/chunk-1.mp3\x7f", "control"),
        ("audio/s 1/chunk-1.mp3", "outside"),
        ("audio/s1/chunk%2D1.mp3", "outside"),
        ("audio/s1/chunk-1.MP3", "wrong extension"),
        ("audio/s1/chunk-1.exe", "wrong extension"),
        ("audio/s1/chunk-1.mp3.json", "chunk-{index}"),
        ("audio/s1/chunk-.mp3", "chunk-{index}"),
        ("audio/s1/chunk--1.mp3", "chunk-{index}"),
        ("audio/s1/chunk-1.5.mp3", "chunk-{index}"),
        ("audio/s1/notes.txt", "chunk-{index}"),
        ("audio/s1/sub/chunk-1.mp3", "expected {prefix}"),
        ("audio/chunk-1.mp3", "expected {prefix}"),
        ("audio/" + "s" * 65 + "/chunk-1.mp3", "session id"),
        ("audio/s.1/chunk-1.mp3", "session id"),
        ("audio/s1/chunk-1000000.mp3", "over"),
        ("audio/s1/chunk-0000000001.mp3", "digits"),
        ("uploads/s1/chunk-1.mp3", "neither"),
        ("transcripts/s1/chunk-3.json", "0003"),
        ("transcripts/s1/chunk-00003.json", "0003"),
        ("transcripts/s1/session.pdf", "not known"),
        ("transcripts/s1/chunk-0003.mp3", "chunk-{index:04d}.json"),
        ("audio/s1/" + "a" * 1020 + ".mp3", "1024-byte"),
    ],
)
def test_rejects_keys_outside_the_grammar_with_a_reason(key: str, reason: str) -> None:
    with pytest.raises(KeyGrammarError) as info:
        LAYOUT.parse(key)
    assert reason in info.value.reason
    assert info.value.key == key


def test_size_limit_is_1024_bytes() -> None:
    with pytest.raises(KeyGrammarError) as at_limit:
        LAYOUT.parse("a" * 1024)
    assert "1024-byte" not in at_limit.value.reason
    with pytest.raises(KeyGrammarError, match="1025 bytes, over the 1024-byte limit"):
        LAYOUT.parse("a" * 1025)


def test_intake_refuses_transcripts_and_audio_chunk_refuses_manifest() -> None:
    with pytest.raises(KeyGrammarError, match="transcript"):
        LAYOUT.parse_intake("transcripts/s1/chunk-0001.json")
    with pytest.raises(KeyGrammarError, match="not an audio chunk"):
        LAYOUT.parse_audio_chunk("audio/s1/manifest.json")


def test_custom_prefixes_are_honoured_and_must_not_nest() -> None:
    layout = KeyLayout("in/audio/", "out/")
    assert layout.parse("in/audio/x/chunk-1.wav") == AudioChunkKey(
        "x", 1, "wav", "in/audio/x/chunk-1.wav"
    )
    assert layout.chunk_transcript("x", 1) == "out/x/chunk-0001.json"
    with pytest.raises(KeyGrammarError, match="nest"):
        KeyLayout("audio/", "audio/transcripts/")
    with pytest.raises(KeyGrammarError, match="nest"):
        KeyLayout("", "transcripts/")
    with pytest.raises(KeyGrammarError, match="prefix"):
        KeyLayout("audio", "transcripts/")
    with pytest.raises(KeyGrammarError, match="traversal"):
        KeyLayout("../", "transcripts/")


def test_format_refuses_bad_parts() -> None:
    with pytest.raises(KeyGrammarError):
        LAYOUT.audio_chunk("../x", 1, "mp3")
    with pytest.raises(KeyGrammarError):
        LAYOUT.audio_chunk("s1", -1, "mp3")
    with pytest.raises(KeyGrammarError):
        LAYOUT.audio_chunk("s1", 1, "exe")
    with pytest.raises(KeyGrammarError):
        LAYOUT.chunk_transcript("s1", MAX_CHUNK_INDEX + 1)
    with pytest.raises(KeyGrammarError):
        LAYOUT.session_transcript("s1", "pdf")  # type: ignore[arg-type]


def test_transcript_for_a_chunk_is_canonical_whatever_the_padding() -> None:
    a = LAYOUT.parse_audio_chunk("audio/s1/chunk-7.ogg")
    b = LAYOUT.parse_audio_chunk("audio/s1/chunk-00007.ogg")
    assert LAYOUT.transcript_for(a) == LAYOUT.transcript_for(b) == "transcripts/s1/chunk-0007.json"


def test_s3_uri() -> None:
    loc = parse_s3_uri("s3://my-bucket/audio/s1/chunk-1.mp3")
    assert (loc.bucket, loc.key) == ("my-bucket", "audio/s1/chunk-1.mp3")
    assert loc.uri == "s3://my-bucket/audio/s1/chunk-1.mp3"
    for bad in ["https://b/k", "s3://bucket", "s3://B/k", "s3://b/../k", "s3://bucket/k k"]:
        with pytest.raises(KeyGrammarError):
            parse_s3_uri(bad)


@given(session_ids, indices, extensions, st.integers(min_value=1, max_value=9))
def test_audio_chunk_keys_round_trip(session: str, index: int, ext: str, width: int) -> None:
    key = LAYOUT.audio_chunk(session, index, ext, width=width)
    assert LAYOUT.parse(key) == AudioChunkKey(session, index, ext, key)  # type: ignore[arg-type]


@given(session_ids, indices)
def test_transcript_keys_round_trip_and_are_unique_per_index(session: str, index: int) -> None:
    key = LAYOUT.chunk_transcript(session, index)
    assert LAYOUT.parse(key) == ChunkTranscriptKey(session, index, key)
    assert LAYOUT.parse(LAYOUT.manifest(session)) == ManifestKey(session, LAYOUT.manifest(session))
    for fmt in ("json", "txt", "srt", "vtt"):
        k = LAYOUT.session_transcript(session, fmt)
        assert LAYOUT.parse(k) == SessionTranscriptKey(session, fmt, k)


@given(st.text(max_size=80))
def test_arbitrary_text_is_parsed_or_rejected_never_crashes(key: str) -> None:
    try:
        parsed = LAYOUT.parse(key)
    except KeyGrammarError as exc:
        assert exc.reason
    else:
        # Whatever parses is inside the character rules and under a known prefix.
        assert key.isascii() and ".." not in key.split("/")
        assert parsed.key == key


@given(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FFF), min_size=1, max_size=10),
    indices,
)
def test_any_foreign_character_in_the_session_is_rejected(junk: str, index: int) -> None:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    if set(junk) <= allowed:
        return
    with pytest.raises(KeyGrammarError):
        LAYOUT.parse(f"audio/s{junk}/chunk-{index}.wav")
