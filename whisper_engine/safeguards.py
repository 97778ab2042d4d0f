"""Checks that catch Whisper's failure modes: repetition loops and text made up from silence."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

# Fewer tokens than this are never called a loop, however they repeat.
MIN_LOOP_TOKENS = 16


def compression_ratio(text: str) -> float:
    """Raw over zlib-compressed size; loops compress well (Whisper's own check uses 2.4)."""
    raw = text.encode("utf-8")
    if not raw:
        return 0.0
    return len(raw) / len(zlib.compress(raw))


def find_repetition_loop(
    tokens: Sequence[int],
    *,
    max_period: int = 48,
    min_repeats: int = 3,
    min_tokens: int = MIN_LOOP_TOKENS,
) -> tuple[int, int] | None:
    """Detect a sequence that ends in the same unit repeated back to back.

    Returns (start, period): the unit of ``period`` tokens repeats from index ``start`` to the
    end. A loop needs ``min_repeats`` copies covering at least ``min_tokens`` tokens, so
    natural repetitions ("no, no, no") are not cut.
    """
    count = len(tokens)
    if count < min_tokens:
        return None
    last = tokens[-1]
    for period in range(1, min(max_period, count // min_repeats) + 1):
        # Called after every decoded token: most periods fail on one comparison.
        if min_repeats > 1 and tokens[count - 1 - period] != last:
            continue
        unit = tokens[count - period :]
        repeats = 1
        position = count - period
        while position - period >= 0 and tokens[position - period : position] == unit:
            repeats += 1
            position -= period
        if repeats >= min_repeats and repeats * period >= min_tokens:
            return position, period
    return None
