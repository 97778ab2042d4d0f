"""Word timestamps: DTW and filters against plain implementations, word splitting, segments,
and the invariants end to end (monotone, inside their segment, joined = segment text, silences
between sentences found)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.speech import synthesize
from whisper_engine.alignment import dtw, median_filter, token_start_times
from whisper_engine.audio import SAMPLE_RATE
from whisper_engine.results import Word
from whisper_engine.words import (
    clamp_to_speech,
    segments_from_words,
    token_bytes_from_pieces,
    words_from_tokens,
)


def _naive_dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenAI's reference recurrence with an explicit trace."""
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    trace = -np.ones((rows + 1, cols + 1))
    total[0, 0] = 0
    for j in range(1, cols + 1):
        for i in range(1, rows + 1):
            c0, c1, c2 = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            total[i, j] = cost[i - 1, j - 1] + c
            trace[i, j] = t
    i, j = rows, cols
    trace[0, :] = 2
    trace[:, 0] = 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        if trace[i, j] == 0:
            i, j = i - 1, j - 1
        elif trace[i, j] == 1:
            i -= 1
        else:
            j -= 1
    result = np.array(path[::-1])
    return result[:, 0], result[:, 1]


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 8),
    cols=st.integers(1, 30),
    seed=st.integers(0, 2**16),
)
def test_vectorised_dtw_finds_the_reference_path(rows: int, cols: int, seed: int) -> None:
    cost = np.random.default_rng(seed).normal(size=(rows, min(cols, rows * 6) or 1))
    cost = np.round(cost, 3)  # distinct sums; ties are resolved by order, not by rounding
    ours = dtw(cost)
    theirs = _naive_dtw(cost)
    assert ours[0].tolist() == theirs[0].tolist()
    assert ours[1].tolist() == theirs[1].tolist()


def test_median_filter_matches_a_plain_one() -> None:
    x = np.random.default_rng(1).normal(size=(2, 3, 40))
    padded = np.pad(x, [(0, 0), (0, 0), (3, 3)], mode="reflect")
    plain = np.stack([np.median(padded[..., i : i + 7], axis=-1) for i in range(40)], axis=-1)
    np.testing.assert_allclose(median_filter(x, 7), plain)


def test_token_times_follow_a_diagonal_attention() -> None:
    # Token k attends to frames 10k..10k+9: starts at 0.2 s steps (50 frames per second).
    tokens, frames, prompt = 5, 60, 3
    scores = np.full((2, prompt + tokens, frames), -5.0, dtype=np.float32)
    for k in range(tokens):
        scores[:, prompt - 1 + k, 10 * k : 10 * k + 10] = 5.0
    starts = token_start_times(scores, prompt, audio_frames=frames)
    assert starts.shape == (tokens + 1,)
    assert np.all(np.diff(starts) >= 0)
    np.testing.assert_allclose(starts[:tokens], [0.0, 0.2, 0.4, 0.6, 0.8], atol=0.06)


def _pieces() -> dict[int, bytes]:
    # Whisper's byte-level BPE writes a leading space as "Ġ"; "Ã¥" is the UTF-8 of "å".
    return {
        1: token_bytes_from_pieces("ĠThe"),
        2: token_bytes_from_pieces("Ġwea"),
        3: token_bytes_from_pieces("ther"),
        4: token_bytes_from_pieces(","),
        5: token_bytes_from_pieces("Ġp"),
        6: token_bytes_from_pieces("Ã"),
        7: token_bytes_from_pieces("¥"),
        8: token_bytes_from_pieces("."),
        9: token_bytes_from_pieces('Ġ"'),
        10: token_bytes_from_pieces("Ġok"),
    }


def test_tokens_group_into_words_with_punctuation_attached() -> None:
    table = _pieces()
    tokens = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    starts = [0.0, 0.3, 0.5, 0.8, 0.9, 1.1, 1.2, 1.3, 2.0, 2.1, 2.4]
    words = words_from_tokens(
        tokens, starts, [-0.1] * len(tokens), token_bytes=table.__getitem__, language="sv"
    )
    # An opening quote joins the word after it (OpenAI's merge keeps both spaces).
    assert [w.word for w in words] == [" The", " weather,", " på.", ' " ok']
    assert [(w.start, w.end) for w in words] == [(0.0, 0.3), (0.3, 0.8), (0.9, 1.3), (2.0, 2.4)]
    assert words[0].probability == pytest.approx(np.exp(-0.1))


def test_languages_without_spaces_split_by_character() -> None:
    table = {1: "日".encode(), 2: "本".encode()}
    words = words_from_tokens(
        [1, 2], [0.0, 0.5, 1.0], [0.0, 0.0], token_bytes=table.__getitem__, language="ja"
    )
    assert [w.word for w in words] == ["日", "本"]


def test_word_edges_leave_the_silences() -> None:
    words = [Word(0.0, 2.9, " Hello.", 0.9), Word(2.9, 3.4, " Again", 0.9)]
    speech = [(0.0, 1.0), (3.0, 4.0)]
    clamped = clamp_to_speech(words, speech)
    assert (clamped[0].start, clamped[0].end) == (0.0, 1.0)
    assert (clamped[1].start, clamped[1].end) == (3.0, 3.4)


def test_segments_end_at_sentence_ends_and_pauses() -> None:
    words = [
        Word(0.0, 0.4, " One", 1.0),
        Word(0.4, 0.8, " two.", 1.0),
        Word(1.0, 1.4, " Three", 1.0),
        Word(3.0, 3.4, " four", 1.0),
    ]
    segments = segments_from_words(words)
    assert [s.text for s in segments] == ["One two.", "Three", "four"]
    assert [(s.start, s.end) for s in segments] == [(0.0, 0.8), (1.0, 1.4), (3.0, 3.4)]


@pytest.mark.slow
def test_words_are_monotone_inside_segments_and_find_the_pause(engine: Any) -> None:
    first = synthesize("The museum is closed on Mondays.", "en", lead_s=0.5, tail_s=0.0)
    second = synthesize("She rides a blue bicycle to work.", "en", lead_s=0.0, tail_s=0.5)
    pause_s = 2.5
    gap = np.zeros(int(pause_s * SAMPLE_RATE), dtype=np.float32)
    audio = np.concatenate([first, gap, second])
    result = engine.transcribe(audio, language="en")
    assert len(result.segments) >= 2
    previous_end = 0.0
    for segment in result.segments:
        words = segment.words
        assert words, segment
        assert "".join(w.word for w in words).strip() == segment.text
        assert segment.start == words[0].start and segment.end == words[-1].end
        for word in words:
            assert previous_end - 1e-6 <= word.start <= word.end <= result.duration_s
            assert 0.0 <= word.probability <= 1.0
            previous_end = word.end
    # No word spans the pause: the last word before it ends near the end of the first
    # sentence and the first word after it starts near the start of the second.
    pause_start = first.shape[0] / SAMPLE_RATE
    pause_end = pause_start + pause_s
    words = [w for s in result.segments for w in s.words or []]
    before = [w for w in words if w.start < pause_start]
    after = [w for w in words if w.start >= pause_start]
    assert before and after
    assert before[-1].end <= pause_start + 0.3
    assert pause_end - 0.3 <= after[0].start <= pause_end + 0.5


def _result(text: str, duration: float) -> Any:
    from whisper_engine.results import Segment, TranscriptionResult

    words = [Word(0.5, 0.9, " Hello", 0.9), Word(0.9, 1.4, " there.", 0.8)]
    return TranscriptionResult(
        text=text,
        segments=[Segment(0.5, 1.4, text, words)],
        language="en",
        duration_s=duration,
        model="whisper-base",
    )


@pytest.mark.parametrize("keep", [True, False])
def test_words_reach_the_session_transcript_with_chunk_offsets(keep: bool) -> None:
    from datetime import UTC, datetime

    from chunk_job.transcript import build_transcript
    from transcript_contracts.models import Manifest
    from transcript_contracts.stitcher import stitch

    chunks = [
        build_transcript(
            bucket="bucket",
            key=f"audio/s1/chunk-{i}.wav",
            session_id="s1",
            index=i,
            etag="e",
            result=_result("Hello there.", 10.0),
            processing_s=1.0,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            transcribed_by="worker",
            model_version=None,
            word_timestamps=keep,
        )
        for i in range(2)
    ]
    session = stitch(Manifest(session_id="s1", chunk_count=2, language="en"), chunks)
    second = session.segments[1]
    if not keep:
        assert second.words is None
        assert "words" not in chunks[0].model_dump_json(exclude_none=True)
        return
    assert second.words is not None
    assert [(w.word, w.start, w.end) for w in second.words] == [
        (" Hello", 10.5, 10.9),
        (" there.", 10.9, 11.4),
    ]
    assert "".join(w.word for w in second.words).strip() == second.text
