"""From decoded tokens and their aligned start times to words, and from words to segments.

Word splitting follows OpenAI's tokenizer: tokens are grouped until their bytes form whole UTF-8
characters; a new word starts at a leading space or a punctuation mark (for languages written
without spaces every character group is a word); punctuation is then merged into the word it
belongs to. A word keeps its leading space, so a segment's text is its words joined and
stripped, and times are monotone by construction (DTW paths are).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from whisper_engine.results import Segment, Word

# Languages written without spaces between words (OpenAI's list).
LANGUAGES_WITHOUT_SPACES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})
# OpenAI's lists, full-width CJK marks included (hence the noqa: they are meant).
PREPEND_PUNCTUATION = "\"'“¿([{-"
APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"  # noqa: RUF001
SENTENCE_END = ".。!！?？"  # noqa: RUF001
# A silence this long between two words ends a segment even without a full stop.
SEGMENT_GAP_S = 1.0


@dataclass(frozen=True)
class _Timed:
    word: str
    tokens: tuple[int, ...]
    start: float
    end: float
    probability: float


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet (Whisper's), character -> byte."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes, strict=True)}


def token_bytes_from_pieces(piece: str) -> bytes:
    """The bytes a byte-level BPE vocabulary entry stands for."""
    decoder = _byte_decoder()
    return bytes(decoder[ch] for ch in piece if ch in decoder)


def words_from_tokens(
    tokens: Sequence[int],
    starts: Sequence[float],
    logprobs: Sequence[float],
    *,
    token_bytes: Callable[[int], bytes],
    language: str,
) -> list[Word]:
    """Words with times relative to the window, from text tokens, their start times (one more
    than the tokens: the last is the end-of-text's) and their log probabilities."""
    if not tokens:
        return []
    groups = _split_words(tokens, token_bytes, language)
    timed: list[_Timed] = []
    position = 0
    for text, group in groups:
        first, last = position, position + len(group)
        probs = np.exp(np.asarray(logprobs[first:last], dtype=np.float64))
        timed.append(
            _Timed(
                text, tuple(group), float(starts[first]), float(starts[last]), float(probs.mean())
            )
        )
        position = last
    timed = _truncate_long_words_at_sentence_ends(timed)
    timed = _merge_punctuation(timed)
    return [
        Word(start=round(t.start, 3), end=round(t.end, 3), word=t.word, probability=t.probability)
        for t in timed
        if t.word
    ]


def _split_words(
    tokens: Sequence[int], token_bytes: Callable[[int], bytes], language: str
) -> list[tuple[str, list[int]]]:
    pieces: list[tuple[str, list[int]]] = []
    pending: list[int] = []
    raw = b""
    for token in tokens:
        pending.append(token)
        raw += token_bytes(token)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            if len(raw) < 8:
                continue  # a character split over tokens: wait for its other bytes
            text = raw.decode("utf-8", errors="replace")
        pieces.append((text, pending))
        pending, raw = [], b""
    if pending:
        pieces.append((raw.decode("utf-8", errors="replace"), pending))
    if language in LANGUAGES_WITHOUT_SPACES:
        return pieces
    words: list[tuple[str, list[int]]] = []
    for text, group in pieces:
        starts_word = text.startswith(" ") or text.strip() in string.punctuation
        if starts_word or not words:
            words.append((text, list(group)))
        else:
            words[-1] = (words[-1][0] + text, words[-1][1] + group)
    return words


def _truncate_long_words_at_sentence_ends(timed: list[_Timed]) -> list[_Timed]:
    """OpenAI's heuristic: a full stop or the word after it that lasts more than twice the
    median word (capped at 0.7 s) is where a pause was absorbed; shorten it."""
    durations = np.array([t.end - t.start for t in timed])
    durations = durations[durations.nonzero()]
    if durations.shape[0] == 0:
        return timed
    limit = 2 * min(0.7, float(np.median(durations)))
    out = list(timed)
    for i in range(1, len(out)):
        word = out[i]
        if word.end - word.start <= limit:
            continue
        if word.word.strip() in SENTENCE_END:
            out[i] = replace(word, end=word.start + limit)
        elif out[i - 1].word.strip() in SENTENCE_END:
            out[i] = replace(word, start=word.end - limit)
    return out


def _merge_punctuation(timed: list[_Timed]) -> list[_Timed]:
    out = list(timed)
    # Opening marks join the following word.
    i, j = len(out) - 2, len(out) - 1
    while i >= 0:
        previous, following = out[i], out[j]
        if previous.word.startswith(" ") and previous.word.strip() in PREPEND_PUNCTUATION:
            out[j] = replace(
                following,
                word=previous.word + following.word,
                tokens=previous.tokens + following.tokens,
                start=previous.start,
            )
            out[i] = replace(previous, word="", tokens=())
        else:
            j = i
        i -= 1
    # Closing marks join the preceding word.
    i, j = 0, 1
    while j < len(out):
        previous, following = out[i], out[j]
        if (
            previous.word
            and not previous.word.endswith(" ")
            and following.word in (APPEND_PUNCTUATION)
        ):
            out[i] = replace(
                previous,
                word=previous.word + following.word,
                tokens=previous.tokens + following.tokens,
            )
            out[j] = replace(following, word="", tokens=())
        else:
            i = j
        j += 1
    return out


def clamp_to_speech(words: list[Word], speech: Sequence[tuple[float, float]]) -> list[Word]:
    """Move word edges that fall in a silence (between the VAD's speech spans) to the speech.

    DTW paths are contiguous, so a pause is absorbed by a neighbouring word; the VAD knows
    where the pause is. A start in a silence moves to the next span's start and an end to the
    previous span's end, when that keeps the word non-empty. ``speech``: sorted (start, end).
    """
    if not speech or not words:
        return words
    starts = np.array([s for s, _ in speech])
    ends = np.array([e for _, e in speech])

    def inside(t: float) -> bool:
        k = int(np.searchsorted(starts, t, side="right")) - 1
        return k >= 0 and t <= ends[k]

    out: list[Word] = []
    for word in words:
        start, end = word.start, word.end
        if not inside(start):
            k = int(np.searchsorted(starts, start, side="right"))
            if k < len(starts) and starts[k] < end:
                start = float(starts[k])
        if not inside(end):
            k = int(np.searchsorted(ends, end, side="left")) - 1
            if k >= 0 and ends[k] > start:
                end = float(ends[k])
        out.append(replace(word, start=round(start, 3), end=round(end, 3)))
    return out


def segments_from_words(words: Sequence[Word]) -> list[Segment]:
    """Segments ending at a sentence end or before a pause of SEGMENT_GAP_S; each carries its
    words, and its text is the words joined (leading space stripped)."""
    segments: list[Segment] = []
    current: list[Word] = []

    def close() -> None:
        if current:
            text = "".join(w.word for w in current).strip()
            if text:
                segments.append(
                    Segment(
                        start=current[0].start,
                        end=max(current[-1].end, current[0].start),
                        text=text,
                        words=list(current),
                    )
                )
            current.clear()

    for index, word in enumerate(words):
        current.append(word)
        following = words[index + 1] if index + 1 < len(words) else None
        sentence_end = word.word.rstrip()[-1:] in SENTENCE_END and word.word.strip() != ""
        pause = following is not None and following.start - word.end >= SEGMENT_GAP_S
        if sentence_end or pause:
            close()
    close()
    return segments
