"""Cutting speech into decoding windows of at most 30 s, at silences. Pure logic, no torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SAMPLE_RATE = 16_000
WHISPER_WINDOW_S = 30.0


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A half-open sample range [start, end)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


def plan_windows(
    speech: Sequence[Span],
    total_samples: int,
    *,
    max_window_samples: int = int(WHISPER_WINDOW_S * SAMPLE_RATE),
    pad_samples: int = int(0.2 * SAMPLE_RATE),
) -> list[Span]:
    """Group speech spans into windows no longer than ``max_window_samples``.

    Consecutive spans share a window while the window still fits, so cuts fall in the silences
    between spans; a span longer than a window on its own (VAD found no pause) is cut into equal
    pieces. Each window is then widened by up to ``pad_samples`` on both sides, never past the
    middle of the silence to its neighbour nor beyond the window limit, so word edges the VAD
    clipped are not lost.
    """
    if max_window_samples <= 0:
        raise ValueError("max_window_samples must be positive")
    spans = _normalise(speech, total_samples)
    pieces: list[Span] = []
    for span in spans:
        pieces.extend(_split_long(span, max_window_samples))

    windows: list[Span] = []
    current: Span | None = None
    for piece in pieces:
        if current is not None and piece.end - current.start <= max_window_samples:
            current = Span(current.start, piece.end)
            continue
        if current is not None:
            windows.append(current)
        current = piece
    if current is not None:
        windows.append(current)
    return _pad(windows, total_samples, max_window_samples, pad_samples)


def _normalise(speech: Sequence[Span], total_samples: int) -> list[Span]:
    clipped = sorted(
        Span(max(0, s.start), min(total_samples, s.end))
        for s in speech
        if min(total_samples, s.end) > max(0, s.start)
    )
    merged: list[Span] = []
    for span in clipped:
        if merged and span.start <= merged[-1].end:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    return merged


def _split_long(span: Span, limit: int) -> list[Span]:
    if span.length <= limit:
        return [span]
    count = -(-span.length // limit)
    step = -(-span.length // count)
    return [Span(s, min(s + step, span.end)) for s in range(span.start, span.end, step)]


def _pad(windows: list[Span], total: int, limit: int, pad: int) -> list[Span]:
    padded: list[Span] = []
    for index, window in enumerate(windows):
        left_bound = 0 if index == 0 else (windows[index - 1].end + window.start) // 2
        right_bound = (
            total if index == len(windows) - 1 else (window.end + windows[index + 1].start) // 2
        )
        room = max(0, limit - window.length)
        grow_left = min(pad, window.start - left_bound, room // 2)
        grow_right = min(pad, right_bound - window.end, room - grow_left)
        padded.append(Span(window.start - grow_left, window.end + grow_right))
    return padded


def pack_windows(
    speech: Sequence[Span],
    total_samples: int,
    *,
    max_window_samples: int = int(WHISPER_WINDOW_S * SAMPLE_RATE),
    pad_samples: int = int(0.2 * SAMPLE_RATE),
) -> list[tuple[Span, ...]]:
    """Speech packed into windows of at most ``max_window_samples`` with the silences left out.

    Each window is a run of pieces of the audio, decoded as one stretch: a speech span widened
    by up to ``pad_samples`` on both sides (never past the middle of the silence to its
    neighbour), pieces that then touch merged. Consecutive pieces fill a window while their
    total fits. This is how faster-whisper's batched pipeline cuts audio: against windows that
    keep the silences it means fewer windows for the same speech (fewer encoder passes and
    decoding rows) and fewer window starts, where Whisper base tends to garble the first words
    (whisper_engine/NOTES.md). A span longer than a window on its own is cut into equal pieces.
    """
    if max_window_samples <= 2 * pad_samples:
        raise ValueError("max_window_samples must leave room for the padding")
    pieces: list[Span] = []
    for span in _normalise(speech, total_samples):
        pieces.extend(_split_long(span, max_window_samples - 2 * pad_samples))
    padded: list[Span] = []
    for index, piece in enumerate(pieces):
        left = 0 if index == 0 else (pieces[index - 1].end + piece.start) // 2
        right = (
            total_samples
            if index == len(pieces) - 1
            else (piece.end + pieces[index + 1].start) // 2
        )
        grown = Span(max(left, piece.start - pad_samples), min(right, piece.end + pad_samples))
        if (
            padded
            and padded[-1].end >= grown.start
            and (grown.end - padded[-1].start <= max_window_samples)
        ):
            padded[-1] = Span(padded[-1].start, grown.end)
        else:
            padded.append(grown)
    windows: list[tuple[Span, ...]] = []
    current: list[Span] = []
    length = 0
    for piece in padded:
        if current and length + piece.length > max_window_samples:
            windows.append(tuple(current))
            current, length = [], 0
        current.append(piece)
        length += piece.length
    if current:
        windows.append(tuple(current))
    return windows
