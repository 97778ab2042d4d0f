"""Typed results of a transcription. Plain dataclasses, importable without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Word:
    """A word with its time span (seconds from the start of the chunk).

    ``word`` keeps the leading space Whisper's tokenizer gives it (" weather"), so that a
    segment's text is its words joined and stripped, in every language; ``probability`` is
    the mean probability of the word's tokens.
    """

    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of text with its time span, in seconds from the start of the chunk.

    ``words`` is None when the engine ran without word alignment (timestamp-token mode).
    """

    start: float
    end: float
    text: str
    words: list[Word] | None = None


@dataclass(frozen=True, slots=True)
class Timings:
    """Wall-clock seconds spent per stage. For a batch, shared stages are split evenly."""

    decode_s: float = 0.0
    vad_s: float = 0.0
    inference_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True, slots=True)
class TranscriptionResult:
    """The transcript of one audio chunk."""

    text: str
    segments: list[Segment]
    language: str
    duration_s: float
    model: str
    timings: Timings = field(default_factory=Timings)
    # What the audio sounds like, whatever language was asked for: the language distribution
    # of Whisper's first decoding step, averaged over the audio's windows (issue 18: callers
    # record it and can flag a confident contradiction of the stated language). None for an
    # English-only model or audio without speech windows.
    detected_language: str | None = None
    language_probability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape the chunk transcript JSON embeds)."""
        return asdict(self)
