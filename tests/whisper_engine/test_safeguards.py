"""Loop and hallucination safeguards, and splitting decoded tokens into segments."""

from __future__ import annotations

from whisper_engine.decoding import _loop_in
from whisper_engine.safeguards import compression_ratio, find_repetition_loop
from whisper_engine.segments import split_timestamp_pieces as _split_segments

TS = 50364  # first timestamp token of multilingual Whisper


def test_compression_ratio_flags_loops_not_prose() -> None:
    prose = "After lunch, my sister called to ask about our plans for the weekend."
    assert compression_ratio(prose) < 2.4
    assert compression_ratio("and so " * 40) > 2.4
    assert compression_ratio("") == 0.0


def test_repetition_loop_found_with_its_start_and_period() -> None:
    tokens = [1, 2, 3] + [7, 8] * 10
    assert find_repetition_loop(tokens) == (3, 2)


def test_natural_repetition_is_not_a_loop() -> None:
    assert find_repetition_loop([5, 6, 9, 9, 9, 4]) is None  # "no, no, no"
    assert find_repetition_loop([1, 2, 3, 4] * 2) is None
    assert find_repetition_loop([]) is None


def test_loop_cut_keeps_text_before_the_loop_and_one_copy() -> None:
    generated = [TS, 10, 11, 12] + [20, 21] * 10
    cut = _loop_in(generated, TS)
    assert cut is not None
    assert generated[:cut] == [TS, 10, 11, 12, 20, 21]


def test_loop_check_ignores_sequences_ending_in_a_timestamp() -> None:
    assert _loop_in([TS, 10, 11, TS + 50], TS) is None


def test_segments_from_timestamp_pairs() -> None:
    tokens = [TS, 10, 11, TS + 100, TS + 100, 12, TS + 250]
    assert _split_segments(tokens, TS) == [(0.0, 2.0, [10, 11]), (2.0, 5.0, [12])]


def test_unclosed_segment_has_open_end() -> None:
    assert _split_segments([TS + 5, 10, 11], TS) == [(0.1, None, [10, 11])]
    assert _split_segments([10], TS) == [(None, None, [10])]
