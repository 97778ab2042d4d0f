"""When each decoded token was spoken: cross-attention alignment with dynamic time warping.

Whisper's "alignment heads" are cross-attention heads whose attention follows the audio. The
method is the one OpenAI's and faster-whisper's word timestamps use: softmax each head's scores
over the window's real audio frames, standardise each frame over the tokens, median-filter
along time, average the heads, and find the monotone token-to-frame path of highest attention
(dynamic time warping). A token starts where the path first reaches its row. Written here with
numpy only; the DTW recurrence is vectorised per row (see ``_dtw_cost``), so a window costs
milliseconds without numba.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

# Whisper's encoder output has one frame per 20 ms.
FRAMES_PER_SECOND = 50
MEDIAN_FILTER_WIDTH = 7


def token_start_times(
    scores: NDArray[np.float32], prompt_rows: int, audio_frames: int
) -> NDArray[np.float64]:
    """Start time (s) of each text token and of the end-of-text, from the window's start.

    ``scores``: alignment-head cross-attention scores before softmax, (heads, rows, frames),
    one row per decoder position from the first prompt token to the last text token.
    ``prompt_rows``: how many leading rows belong to the prompt; the row of the last prompt
    token (which predicts the first text token) is kept, so the result has
    ``rows - prompt_rows + 1`` entries: one per text token plus one for end-of-text.
    ``audio_frames``: encoder frames that hold real audio (the rest is padding).
    """
    heads, rows, frames = scores.shape
    texts = rows - prompt_rows + 1
    if texts <= 0 or heads == 0:
        return np.zeros(0, dtype=np.float64)
    used = max(1, min(frames, audio_frames))
    # float32, as OpenAI's (torch) implementation computes it; the DTW sums in float64.
    weights = scores[:, :, :used].astype(np.float32)
    weights -= weights.max(axis=-1, keepdims=True)
    np.exp(weights, out=weights)
    weights /= weights.sum(axis=-1, keepdims=True)
    mean = weights.mean(axis=-2, keepdims=True)
    std = weights.std(axis=-2, keepdims=True)
    weights -= mean
    weights /= np.where(std > 0, std, 1.0)
    weights = median_filter(weights, MEDIAN_FILTER_WIDTH)
    matrix = weights.mean(axis=0, dtype=np.float64)[prompt_rows - 1 :]
    text_indices, time_indices = dtw(-matrix)
    jumps = np.diff(text_indices, prepend=-1) > 0
    starts = time_indices[jumps].astype(np.float64) / FRAMES_PER_SECOND
    if starts.shape[0] != texts:
        # The path covers every row by construction; this guards the arithmetic above.
        raise ValueError(f"alignment found {starts.shape[0]} token starts for {texts} tokens")
    return starts


def median_filter(x: NDArray[Any], width: int) -> NDArray[Any]:
    """Median over a sliding window along the last axis, reflect-padded (OpenAI's filter)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    length = x.shape[-1]
    if width == _MEDIAN7_WIDTH:
        return _median7([padded[..., k : k + length] for k in range(width)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.partition(windows, pad, axis=-1)[..., pad]


_MEDIAN7_WIDTH = 7
# A median-of-7 selection network (Devillard's opt_med7): 13 compare-exchanges on whole arrays
# instead of a partition per window, which was most of a window's alignment time.
_MEDIAN7_NETWORK = (
    (0, 5), (0, 3), (1, 6), (2, 4), (0, 1), (3, 5), (2, 6),
    (2, 3), (3, 6), (4, 5), (1, 4), (1, 3), (3, 4),
)  # fmt: skip


def _median7(values: list[NDArray[Any]]) -> NDArray[Any]:
    v = [np.array(value) for value in values]  # own copies: the inputs overlap
    spare = np.empty_like(v[0])
    for a, b in _MEDIAN7_NETWORK:
        np.minimum(v[a], v[b], out=spare)
        np.maximum(v[a], v[b], out=v[b])
        v[a], spare = spare, v[a]
    return v[3]


def dtw(cost: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The monotone path through ``cost`` (rows, cols) of least total cost, as (rows, cols)
    index arrays from (0, 0) to (rows - 1, cols - 1)."""
    total = _dtw_cost(cost)
    return _backtrace(total)


def _dtw_cost(cost: NDArray[np.float64]) -> NDArray[np.float64]:
    """Accumulated cost D with D[0, 0] = 0 and borders at infinity, (rows + 1, cols + 1).

    D[i, j] = c[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1]). Along a row the last term
    makes it a scan, but a closed form exists: with a[j] = min(D[i-1, j-1], D[i-1, j]) and S the
    row's prefix sums of c, D[i, j] = S[j] + min over k <= j of (a[k] - S[k-1]), i.e. a
    cumulative minimum, which numpy computes for the whole row at once.
    """
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    total[0, 0] = 0.0
    for i in range(1, rows + 1):
        above = total[i - 1]
        best_entry = np.minimum(above[:-1], above[1:])  # a[j] for j = 1..cols
        prefix = np.concatenate(([0.0], np.cumsum(cost[i - 1])))
        total[i, 1:] = prefix[1:] + np.minimum.accumulate(best_entry - prefix[:-1])
    return total


def _backtrace(total: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    i, j = total.shape[0] - 1, total.shape[1] - 1
    path: list[tuple[int, int]] = []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        diagonal, up, left = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
        # OpenAI's tie order: the diagonal only when strictly best, then up, then left.
        if diagonal < up and diagonal < left:
            i, j = i - 1, j - 1
        elif up < diagonal and up < left:
            i -= 1
        else:
            j -= 1
    # A path that reaches the first row or column early runs along it to (0, 0).
    while i > 0:
        i -= 1
        path.append((i, 0))
    while j > 0:
        j -= 1
        path.append((0, j))
    path.reverse()
    result = np.array(path, dtype=np.int64).reshape(-1, 2)
    return result[:, 0], result[:, 1]
