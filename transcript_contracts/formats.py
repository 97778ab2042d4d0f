"""Transcript renderings: json (canonical bytes), txt, srt and vtt."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Final

from transcript_contracts.keys import TranscriptFormat
from transcript_contracts.models import ChunkTranscript, SessionTranscript, TranscriptSegment

MEDIA_TYPES: Final[dict[str, str]] = {
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}

_SPACE = re.compile(r"\s+")


def _one_line(text: str) -> str:
    # A blank line ends a cue in srt and vtt: cue text is kept to one line.
    return _SPACE.sub(" ", text).strip()


def format_timestamp(seconds: float, *, decimal: str = ",") -> str:
    """``HH:MM:SS,mmm`` (srt) or ``HH:MM:SS.mmm`` (vtt); hours grow past 99 when they must."""
    total_ms = max(0, round(seconds * 1000))
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(segments: Sequence[TranscriptSegment]) -> list[tuple[float, float, str]]:
    """Non-empty segments as (start, end, one-line text); a segment with no text is no cue."""
    return [(s.start, max(s.start, s.end), text) for s in segments if (text := _one_line(s.text))]


def to_srt(segments: Sequence[TranscriptSegment]) -> str:
    return "\n".join(
        f"{n}\n{format_timestamp(start)} --> {format_timestamp(end)}\n{text.replace('-->', '->')}\n"
        for n, (start, end, text) in enumerate(_cues(segments), start=1)
    )


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(segments: Sequence[TranscriptSegment]) -> str:
    blocks = ["WEBVTT\n"]
    for start, end, text in _cues(segments):
        blocks.append(
            f"{format_timestamp(start, decimal='.')} --> "
            f"{format_timestamp(end, decimal='.')}\n{_vtt_escape(text)}\n"
        )
    return "\n".join(blocks)


def to_txt(transcript: ChunkTranscript | SessionTranscript) -> str:
    """One line per segment; the plain text when there are no segments; empty for silence."""
    lines = [line for s in transcript.segments if (line := _one_line(s.text))]
    if not lines and transcript.text.strip():
        lines = [_one_line(transcript.text)]
    return "".join(f"{line}\n" for line in lines)


def to_json(transcript: ChunkTranscript | SessionTranscript) -> str:
    """Canonical JSON: field order of the model, UTF-8 as is, two-space indent, final newline."""
    return json.dumps(transcript.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


def render(transcript: ChunkTranscript | SessionTranscript, fmt: TranscriptFormat) -> bytes:
    if fmt == "json":
        text = to_json(transcript)
    elif fmt == "txt":
        text = to_txt(transcript)
    elif fmt == "srt":
        text = to_srt(transcript.segments)
    elif fmt == "vtt":
        text = to_vtt(transcript.segments)
    else:
        raise ValueError(f"unknown transcript format {fmt!r}")
    return text.encode("utf-8")
