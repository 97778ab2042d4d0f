"""Window planning: windows of at most 30 s whose cuts fall in silences."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from whisper_engine.windows import SAMPLE_RATE, Span, plan_windows

S = SAMPLE_RATE
MAX = 30 * S


def test_no_speech_gives_no_windows() -> None:
    assert plan_windows([], 60 * S) == []


def test_short_utterances_share_a_window() -> None:
    spans = [Span(1 * S, 3 * S), Span(5 * S, 9 * S), Span(12 * S, 14 * S)]
    windows = plan_windows(spans, 20 * S, pad_samples=0)
    assert windows == [Span(1 * S, 14 * S)]


def test_cuts_fall_between_utterances_never_inside() -> None:
    # 4 s of speech every 5 s for 100 s: windows must close in the 1 s pauses.
    spans = [Span(t * S, (t + 4) * S) for t in range(0, 100, 5)]
    windows = plan_windows(spans, 100 * S, pad_samples=0)
    assert len(windows) == 4
    for window in windows:
        assert window.length <= MAX
        for span in spans:
            inside = window.start < span.end and span.start < window.end
            assert not inside or (window.start <= span.start and span.end <= window.end)


def test_padding_stays_within_audio_gap_midpoints_and_limit() -> None:
    spans = [Span(1 * S, 29 * S + S // 2), Span(30 * S, 40 * S)]
    windows = plan_windows(spans, 41 * S, pad_samples=S)
    # 1.5 s of room under the limit: half of it on the left, the rest up to the gap's middle.
    assert windows[0].start == S // 4
    assert windows[0].end == (29 * S + S // 2 + 30 * S) // 2
    assert windows[0].length <= MAX
    assert windows[1].start >= windows[0].end
    assert windows[1].end == 41 * S


def test_speech_longer_than_a_window_is_cut_evenly() -> None:
    windows = plan_windows([Span(0, 70 * S)], 70 * S, pad_samples=0)
    assert len(windows) == 3
    assert all(w.length <= MAX for w in windows)
    assert all(a.end == b.start for a, b in pairwise(windows))
    assert windows[0].start == 0
    assert windows[-1].end == 70 * S


def test_unsorted_overlapping_and_out_of_range_spans_are_normalised() -> None:
    spans = [Span(10 * S, 12 * S), Span(-S, 2 * S), Span(11 * S, 13 * S), Span(19 * S, 25 * S)]
    windows = plan_windows(spans, 20 * S, pad_samples=0)
    assert windows == [Span(0, 20 * S)]


spans_strategy = st.lists(
    st.tuples(st.integers(0, 300 * S), st.integers(1, 40 * S)).map(
        lambda t: Span(t[0], t[0] + t[1])
    ),
    max_size=30,
)


@given(spans=spans_strategy, pad=st.integers(0, S))
def test_windows_are_bounded_ordered_disjoint_and_cover_all_speech(
    spans: list[Span], pad: int
) -> None:
    total = 320 * S
    windows = plan_windows(spans, total, pad_samples=pad)
    for window in windows:
        assert 0 <= window.start < window.end <= total
        assert window.length <= MAX
    for left, right in pairwise(windows):
        assert left.end <= right.start
    for span in spans:
        clipped = Span(max(0, span.start), min(total, span.end))
        covered = sum(
            max(0, min(w.end, clipped.end) - max(w.start, clipped.start)) for w in windows
        )
        assert covered == clipped.length


def test_packed_windows_leave_out_silences_and_fit() -> None:
    from whisper_engine.windows import pack_windows

    speech = [Span(1000, 9000), Span(12000, 20000), Span(40000, 52000), Span(60000, 61000)]
    windows = pack_windows(speech, 70000, max_window_samples=20000, pad_samples=500)
    assert all(sum(p.length for p in w) <= 20000 for w in windows)
    pieces = [p for w in windows for p in w]
    assert pieces == sorted(pieces)
    # Every speech span is inside a piece, with up to 500 samples of padding around it.
    for span in speech:
        (piece,) = [p for p in pieces if p.start <= span.start and span.end <= p.end]
        assert span.start - piece.start <= 500 and piece.end - span.end <= 500
    # The long silences are not decoded: 33000 samples of the 61000 spanned.
    assert sum(p.length for p in pieces) == 33000
    assert len(windows) == 2


def test_packed_window_times_map_back_to_the_audio() -> None:
    from whisper_engine.audio import SAMPLE_RATE
    from whisper_engine.passes import Window

    window = Window(0, (Span(16000, 32000), Span(80000, 96000)), "en")
    assert window.length == 32000
    assert window.to_audio_s(0.5) == 1.5  # inside the first piece
    assert (
        window.to_audio_s(1.5) == 80000 / SAMPLE_RATE + 0.5
    )  # second piece, 4 s of silence skipped
    assert window.to_audio_s(9.0) == 6.0  # past the end: the window's end
