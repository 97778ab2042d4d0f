"""Which language the engine is told for a queued or forwarded chunk: the seam where the
session's language is decided (one function, so a later session-wide decision replaces it here
and every adapter follows)."""

from __future__ import annotations

import logging

from transcript_contracts.language import is_supported_language

logger = logging.getLogger(__name__)


def chunk_language(session_id: str, stated: str | None, default: str) -> str:
    """The session's stated language (its manifest's, or the request's) when Whisper knows it
    (or ``auto``); otherwise ``default`` (LANGUAGE; ``auto`` detects). Anything else is logged
    and ignored, never passed to the engine (which would fail the chunk for it). Without a
    bucket to read the session's record from; :meth:`chunk_job.ChunkJob.language_for` with
    one follows docs/design.md §2 "Session language" in full."""
    if stated == "auto" or is_supported_language(stated):
        return stated or default
    if stated:
        logger.warning(
            "language %r of session %s ignored, using %s",
            stated,
            session_id,
            default,
            extra={"session_id": session_id},
        )
    return default
