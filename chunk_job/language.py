"""Which language the engine is told for a queued or forwarded chunk: the seam where the
session's language is decided (one function, so a later session-wide decision replaces it here
and every adapter follows)."""

from __future__ import annotations

import logging

from transcript_contracts.language import is_language_code

logger = logging.getLogger(__name__)


def chunk_language(session_id: str, stated: str | None, default: str) -> str:
    """The session's stated language (its manifest's, or the request's) when it is a language
    code; otherwise ``default`` (LANGUAGE; ``auto`` detects). A code that is not one is
    logged and ignored, never passed to the engine."""
    if stated and is_language_code(stated):
        return stated
    if stated:
        logger.warning(
            "language %r of session %s ignored, using %s",
            stated,
            session_id,
            default,
            extra={"session_id": session_id},
        )
    return default
