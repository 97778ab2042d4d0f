"""Typed results of a transcription. Plain dataclasses, importable without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of text with its time span, in seconds from the start of the chunk."""

    start: float
    end: float
    text: str


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape the chunk transcript JSON embeds)."""
        return asdict(self)
