"""A decoded window's segments, in seconds from the start of its audio.

Three ways, by how the window was decoded:

- aligned (the default): words from the tokens and their aligned start times (words.py), edges
  moved out of the VAD's silences, grouped into segments at sentence ends and pauses;
- timestamp tokens: Whisper's own ``<|t|> text <|t|>`` pairs;
- neither: one segment spanning the window.

The checks are applied here too: a window is dropped as silence when Whisper's no-speech
probability is high and its confidence low, and a segment as a loop when its text compresses
too well (OpenAI's thresholds).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from whisper_engine.decoding import WindowDecoding
from whisper_engine.results import Segment, Word
from whisper_engine.safeguards import compression_ratio
from whisper_engine.tokens import TIME_PRECISION_S
from whisper_engine.words import clamp_to_speech, segments_from_words, words_from_tokens

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentRules:
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4


@dataclass(frozen=True)
class WindowText:
    """How to turn a window's tokens into text."""

    timestamp_begin: int
    decode: Callable[[list[int]], str]  # tokens -> text, special tokens skipped
    token_bytes: Callable[[int], bytes]


def window_segments(
    decoding: WindowDecoding,
    *,
    to_audio_s: Callable[[float], float],
    start_s: float,
    end_s: float,
    speech: Sequence[tuple[float, float]],
    text: WindowText,
    rules: SegmentRules,
) -> list[Segment]:
    """The segments of one window that starts at ``start_s`` and ends at ``end_s`` in the
    audio; ``to_audio_s`` maps a time in the decoded stretch to the audio's (the stretch
    leaves out the silences between the window's pieces)."""
    if (
        decoding.no_speech_prob > rules.no_speech_threshold
        and decoding.avg_logprob < rules.logprob_threshold
    ):
        logger.info(
            "window %.1f-%.1f s skipped as silence (no_speech %.2f, avg_logprob %.2f)",
            start_s,
            end_s,
            decoding.no_speech_prob,
            decoding.avg_logprob,
        )
        return []
    if decoding.loop_cut is not None:
        logger.warning(
            "window %.1f-%.1f s: repetition loop cut after %d tokens",
            start_s,
            end_s,
            decoding.loop_cut,
        )
    if decoding.token_starts is not None:
        segments = _aligned(decoding, to_audio_s, start_s, end_s, speech, text)
    elif any(t >= text.timestamp_begin for t in decoding.tokens):
        segments = _from_timestamp_tokens(decoding.tokens, to_audio_s, end_s, text)
    else:
        whole = text.decode(decoding.tokens).strip()
        segments = [Segment(start=round(start_s, 3), end=round(end_s, 3), text=whole)]
        segments = [s for s in segments if s.text]
    # Per segment, not per window: a packed window can hold the same sentence said twice, and
    # its text as a whole then compresses like a loop. A loop stays inside a segment (the
    # decoder cuts a unit repeated three times, safeguards.py), so it is still caught.
    kept = []
    for segment in segments:
        ratio = compression_ratio(segment.text)
        if ratio > rules.compression_ratio_threshold:
            logger.warning(
                "segment %.1f-%.1f s dropped: compression ratio %.2f looks like a repetition loop",
                segment.start,
                segment.end,
                ratio,
            )
            continue
        kept.append(segment)
    return kept


def _aligned(
    decoding: WindowDecoding,
    to_audio_s: Callable[[float], float],
    start_s: float,
    end_s: float,
    speech: Sequence[tuple[float, float]],
    text: WindowText,
) -> list[Segment]:
    starts = decoding.token_starts
    if starts is None or not decoding.tokens:
        return []
    words = words_from_tokens(
        decoding.tokens,
        [float(s) for s in starts],
        decoding.token_logprobs,
        token_bytes=text.token_bytes,
        language=decoding.language,
    )
    shifted = [
        Word(
            start=round(min(to_audio_s(w.start), end_s), 3),
            end=round(min(to_audio_s(w.end), end_s), 3),
            word=w.word,
            probability=round(w.probability, 4),
        )
        for w in words
    ]
    inside = [(max(a, start_s), min(b, end_s)) for a, b in speech if b > start_s and a < end_s]
    return segments_from_words(clamp_to_speech(shifted, inside))


def _from_timestamp_tokens(
    tokens: list[int], to_audio_s: Callable[[float], float], end_s: float, text: WindowText
) -> list[Segment]:
    segments: list[Segment] = []
    for start, end, text_tokens in split_timestamp_pieces(tokens, text.timestamp_begin):
        piece = text.decode(text_tokens).strip()
        if not piece:
            continue
        seg_start = min(to_audio_s(start if start is not None else 0.0), end_s)
        seg_end = min(to_audio_s(end), end_s) if end is not None else end_s
        segments.append(
            Segment(start=round(seg_start, 3), end=round(max(seg_end, seg_start), 3), text=piece)
        )
    return segments


def split_timestamp_pieces(
    tokens: list[int], timestamp_begin: int
) -> list[tuple[float | None, float | None, list[int]]]:
    """(start, end, text tokens) per timestamped piece, times relative to the window."""
    pieces: list[tuple[float | None, float | None, list[int]]] = []
    start: float | None = None
    text: list[int] = []
    for token in tokens:
        if token < timestamp_begin:
            text.append(token)
            continue
        stamp = (token - timestamp_begin) * TIME_PRECISION_S
        if text:
            pieces.append((start, stamp, text))
            text = []
            start = None
        else:
            start = stamp
    if text:
        pieces.append((start, None, text))
    return pieces
