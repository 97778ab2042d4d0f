"""Chunk transcripts + manifest → one session transcript (docs/design.md §2).

Offsets: the manifest's ``offset_s`` when it gives one for a chunk, otherwise the previous chunk's
offset plus its real decoded duration (with no offsets in the manifest that is the sum of the
durations before it; never the last segment's end, which would drop trailing silence).
Deterministic: the same inputs always give the same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from transcript_contracts.errors import IncompleteSessionError, StitchError
from transcript_contracts.language import is_supported_language
from transcript_contracts.models import (
    ChunkTranscript,
    Manifest,
    SessionChunk,
    SessionTranscript,
    TranscriptSegment,
    WordTiming,
)


@dataclass(frozen=True, slots=True)
class Completeness:
    """Whether a session can be stitched: the manifest exists and chunks 0..n-1 have transcripts."""

    session_id: str
    manifest_present: bool
    chunk_count: int | None
    present: tuple[int, ...]
    missing: tuple[int, ...]
    # Transcripts whose index is past the manifest's chunk_count: never stitched, reported.
    unexpected: tuple[int, ...]

    @property
    def complete(self) -> bool:
        return self.manifest_present and not self.missing


def check_completeness(
    session_id: str, manifest: Manifest | None, transcript_indices: Iterable[int]
) -> Completeness:
    present = tuple(sorted(set(transcript_indices)))
    if manifest is None:
        return Completeness(session_id, False, None, present, (), ())
    if manifest.session_id != session_id:
        raise StitchError(
            f"manifest names session {manifest.session_id!r}, expected {session_id!r}"
        )
    have = set(present)
    n = manifest.chunk_count
    missing = tuple(i for i in range(n) if i not in have)
    unexpected = tuple(i for i in present if i >= n)
    return Completeness(session_id, True, n, present, missing, unexpected)


def _ms(value: float) -> float:
    # Millisecond resolution keeps float noise (0.1 + 0.2) out of the bytes.
    return round(value, 3)


def _shift(segment: TranscriptSegment, offset: float) -> TranscriptSegment:
    words = (
        [
            WordTiming(
                start=_ms(w.start + offset),
                end=_ms(w.end + offset),
                word=w.word,
                probability=w.probability,
            )
            for w in segment.words
        ]
        if segment.words is not None
        else None
    )
    return TranscriptSegment(
        start=_ms(segment.start + offset),
        end=_ms(segment.end + offset),
        text=segment.text,
        words=words,
    )


def _session_language(manifest: Manifest, chunks: list[ChunkTranscript]) -> str:
    # Only a language Whisper knows is the session's: a manifest's "swedish" or "auto" was not
    # what the chunks were transcribed in (docs/design.md §2, "Session language").
    if is_supported_language(manifest.language) and manifest.language:
        return manifest.language
    counts = Counter(c.language for c in chunks)
    # Most chunks win; a tie goes to the language that appears first in index order.
    first_seen = {lang: i for i, lang in reversed(list(enumerate(c.language for c in chunks)))}
    return min(counts, key=lambda lang: (-counts[lang], first_seen[lang]))


def stitch(manifest: Manifest, transcripts: Iterable[ChunkTranscript]) -> SessionTranscript:
    """Stitch a complete session; raise IncompleteSessionError or StitchError otherwise."""
    by_index: dict[int, ChunkTranscript] = {}
    for t in transcripts:
        if t.session_id != manifest.session_id:
            raise StitchError(
                f"chunk {t.chunk_index} belongs to session {t.session_id!r}, "
                f"not {manifest.session_id!r}"
            )
        if t.chunk_index in by_index and by_index[t.chunk_index] != t:
            raise StitchError(f"two different transcripts for chunk {t.chunk_index}")
        by_index[t.chunk_index] = t

    state = check_completeness(manifest.session_id, manifest, by_index)
    if state.missing:
        raise IncompleteSessionError(manifest.session_id, state.missing)

    ordered = [by_index[i] for i in range(manifest.chunk_count)]
    chunks: list[SessionChunk] = []
    segments: list[TranscriptSegment] = []
    offset = 0.0
    previous: SessionChunk | None = None
    for t in ordered:
        given = manifest.offset_for(t.chunk_index)
        if given is not None:
            offset = given
        elif previous is not None:
            offset = previous.offset_s + previous.duration_s
        offset = _ms(offset)
        if previous is not None and offset < previous.offset_s:
            raise StitchError(
                f"chunk {t.chunk_index} would start at {offset}s, before chunk "
                f"{previous.chunk_index} at {previous.offset_s}s: fix the manifest's offset_s"
            )
        shifted = [_shift(s, offset) for s in t.segments]
        chunk = SessionChunk(
            chunk_index=t.chunk_index,
            offset_s=offset,
            duration_s=t.duration_s,
            source=t.source,
            language=t.language,
            detected_language=t.detected_language,
            language_probability=t.language_probability,
            language_warning=t.language_warning,
            model=t.model,
            model_version=t.model_version,
            text=t.text,
            segments=shifted,
        )
        chunks.append(chunk)
        segments.extend(shifted)
        previous = chunk

    last = chunks[-1]
    return SessionTranscript(
        session_id=manifest.session_id,
        chunk_count=manifest.chunk_count,
        language=_session_language(manifest, ordered),
        models=sorted({t.model for t in ordered}),
        model_versions=sorted({t.model_version for t in ordered if t.model_version}) or None,
        duration_s=_ms(last.offset_s + last.duration_s),
        text=" ".join(t.text.strip() for t in ordered if t.text.strip()),
        segments=segments,
        chunks=chunks,
        created_at=max(t.created_at for t in ordered),
    )
