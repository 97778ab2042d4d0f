from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transcript_contracts.conftest import make_chunk
from transcript_contracts.errors import IncompleteSessionError, StitchError
from transcript_contracts.formats import render
from transcript_contracts.models import ChunkTranscript, Manifest
from transcript_contracts.stitcher import check_completeness, stitch


def manifest(n: int, **kw: object) -> Manifest:
    return Manifest.model_validate({"session_id": "s1", "chunk_count": n, **kw})


def test_offsets_are_sums_of_real_durations_not_last_segment_ends() -> None:
    # Chunk 0 is 30 s long but its last words end at 12 s: chunk 1 must start at 30 s.
    chunks = [
        make_chunk(0, 30.0, [(1.0, 12.0, "första")]),
        make_chunk(1, 25.0, [(0.5, 2.0, "andra")]),
        make_chunk(2, 5.0, [(0.0, 1.0, "tredje")]),
    ]
    session = stitch(manifest(3), chunks)
    assert [c.offset_s for c in session.chunks] == [0.0, 30.0, 55.0]
    assert [(s.start, s.end) for s in session.segments] == [(1.0, 12.0), (30.5, 32.0), (55.0, 56.0)]
    assert session.duration_s == 60.0
    assert session.text == "första andra tredje"


def test_manifest_offsets_win_and_later_chunks_follow_them() -> None:
    chunks = [make_chunk(i, 10.0, [(0.0, 1.0, f"c{i}")]) for i in range(3)]
    m = manifest(3, chunks=[{"index": 1, "offset_s": 100.0}])
    session = stitch(m, chunks)
    assert [c.offset_s for c in session.chunks] == [0.0, 100.0, 110.0]
    assert session.segments[1].start == 100.0


def test_contradictory_manifest_offset_is_refused_with_reason() -> None:
    chunks = [make_chunk(i, 10.0) for i in range(3)]
    m = manifest(3, chunks=[{"index": 2, "offset_s": 5.0}])
    with pytest.raises(StitchError, match="fix the manifest"):
        stitch(m, chunks)


def test_order_does_not_depend_on_input_order_or_key_padding() -> None:
    chunks = [make_chunk(i, 3.0, [(0.0, 1.0, f"w{i}")]) for i in range(12)]
    shuffled = chunks[:]
    random.Random(4).shuffle(shuffled)
    a = stitch(manifest(12), chunks)
    b = stitch(manifest(12), shuffled)
    # chunk-10 must follow chunk-9, not chunk-1 (lexical order would break this).
    assert [c.chunk_index for c in a.chunks] == list(range(12))
    assert render(a, "json") == render(b, "json")


def test_incomplete_session_names_missing_chunks() -> None:
    with pytest.raises(IncompleteSessionError) as info:
        stitch(manifest(4), [make_chunk(0), make_chunk(2)])
    assert info.value.missing == (1, 3)
    assert "2 chunk(s) missing (1, 3)" in str(info.value)


def test_chunks_past_chunk_count_are_not_stitched_but_reported() -> None:
    state = check_completeness("s1", manifest(2), [0, 1, 2])
    assert state.complete and state.unexpected == (2,)
    session = stitch(manifest(2), [make_chunk(i) for i in range(3)])
    assert len(session.chunks) == 2


def test_completeness_needs_the_manifest() -> None:
    state = check_completeness("s1", None, [0, 1, 2])
    assert not state.complete and state.chunk_count is None and state.present == (0, 1, 2)
    assert not check_completeness("s1", manifest(3), [0, 2]).complete
    assert check_completeness("s1", manifest(3), [2, 0, 1]).complete
    with pytest.raises(StitchError, match="manifest names session"):
        check_completeness("other", manifest(1), [0])


def test_foreign_or_conflicting_transcripts_are_refused() -> None:
    with pytest.raises(StitchError, match="belongs to session"):
        stitch(manifest(1), [make_chunk(0, session_id="s2")])
    with pytest.raises(StitchError, match="two different"):
        stitch(manifest(1), [make_chunk(0, 1.0), make_chunk(0, 2.0)])
    # The same transcript twice (a duplicate listing) is harmless.
    assert stitch(manifest(1), [make_chunk(0), make_chunk(0)]).chunk_count == 1


def test_empty_chunks_keep_their_time() -> None:
    chunks = [make_chunk(0, 10.0, []), make_chunk(1, 10.0, [(1.0, 2.0, "tal")])]
    session = stitch(manifest(2), chunks)
    assert session.segments[0].start == 11.0
    assert session.text == "tal"


def test_language_from_manifest_else_majority_else_first() -> None:
    chunks = [
        make_chunk(0, language="en"),
        make_chunk(1, language="sv"),
        make_chunk(2, language="sv"),
    ]
    assert stitch(manifest(3), chunks).language == "sv"
    assert stitch(manifest(3, language="fi"), chunks).language == "fi"
    tie = [make_chunk(0, language="en"), make_chunk(1, language="sv")]
    assert stitch(manifest(2), tie).language == "en"


def test_created_at_is_the_newest_chunk_time_so_bytes_are_stable() -> None:
    chunks = [make_chunk(i) for i in range(3)]
    assert stitch(manifest(3), chunks).created_at == max(c.created_at for c in chunks)


# --- properties --------------------------------------------------------------------------

segment_lists = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=29, allow_nan=False),
        st.floats(min_value=0, max_value=1, allow_nan=False),
        st.text(max_size=12),
    ),
    max_size=4,
)


@st.composite
def sessions(draw: st.DrawFn) -> tuple[Manifest, list[ChunkTranscript]]:
    n = draw(st.integers(min_value=1, max_value=8))
    chunks = []
    for i in range(n):
        duration = draw(st.floats(min_value=0, max_value=40, allow_nan=False))
        segs = sorted(draw(segment_lists))
        chunks.append(make_chunk(i, duration, [(a, a + d, t) for a, d, t in segs]))
    given_offsets = draw(st.booleans())
    if given_offsets:
        offsets = sorted(draw(st.lists(st.floats(0, 1e5), min_size=n, max_size=n)))
        m = manifest(n, chunks=[{"index": i, "offset_s": o} for i, o in enumerate(offsets)])
    else:
        m = manifest(n)
    return m, chunks


@settings(max_examples=150, deadline=None)
@given(sessions(), st.randoms())
def test_stitch_invariants(
    case: tuple[Manifest, list[ChunkTranscript]], rnd: random.Random
) -> None:
    m, chunks = case
    shuffled = chunks[:]
    rnd.shuffle(shuffled)
    session = stitch(m, shuffled)
    # Order: chunks by index whatever the input order.
    assert [c.chunk_index for c in session.chunks] == list(range(m.chunk_count))
    # Offsets monotone, and each chunk's segments are its own shifted by its offset.
    offsets = [c.offset_s for c in session.chunks]
    assert offsets == sorted(offsets)
    for chunk, original in zip(session.chunks, chunks, strict=True):
        assert len(chunk.segments) == len(original.segments)
        for shifted, seg in zip(chunk.segments, original.segments, strict=True):
            assert shifted.start == pytest.approx(seg.start + chunk.offset_s, abs=1e-3)
            assert shifted.end >= shifted.start
        if m.offset_for(chunk.chunk_index) is None and chunk.chunk_index == 0:
            assert chunk.offset_s == 0.0
    if not m.chunks:
        expected = 0.0
        for chunk, original in zip(session.chunks, chunks, strict=True):
            assert chunk.offset_s == pytest.approx(expected, abs=1e-2)
            expected += original.duration_s
    # Determinism: the same transcripts give the same bytes in every format.
    again = stitch(m, list(reversed(chunks)))
    for fmt in ("json", "txt", "srt", "vtt"):
        assert render(session, fmt) == render(again, fmt)


def test_a_manifest_language_whisper_does_not_know_is_not_the_sessions() -> None:
    """Issue 18: "swedish" or "auto" in the manifest is not what the chunks were transcribed
    in; the session carries the chunks' language, and each chunk's detection and warning."""
    chunks = [
        make_chunk(0, language="en").model_copy(
            update={"detected_language": "en", "language_probability": 0.96}
        ),
        make_chunk(1, language="en").model_copy(
            update={"language_warning": "transcribed as 'en' but the audio sounds like 'sv'"}
        ),
    ]
    for stated in ("swedish", "auto", "xx"):
        assert stitch(manifest(2, language=stated), chunks).language == "en"
    session = stitch(manifest(2), chunks)
    assert session.chunks[0].detected_language == "en"
    assert session.chunks[0].language_probability == 0.96
    assert session.chunks[1].language_warning is not None
    # Unset fields stay out of the JSON: older documents keep their exact bytes.
    plain = stitch(manifest(1), [make_chunk(0)])
    assert b"detected_language" not in render(plain, "json")
