"""Typed errors raised by the contracts package; callers map them to responses in one place.

ContractError
├── KeyGrammarError          a key outside the grammar of docs/design.md §2 (also ValueError)
├── UnsafeUrlError           a URL that breaks the SSRF rules, P17 (url_safety.py; ValueError)
├── SettingsError            settings missing or invalid at start, each variable named
└── StitchError              chunk transcripts and manifest disagree
    └── IncompleteSessionError   chunks are missing: not yet stitchable
"""

from __future__ import annotations


class ContractError(Exception):
    """Base of every error the contracts package raises."""


class KeyGrammarError(ContractError, ValueError):
    """A key outside the grammar of docs/design.md §2; `reason` says which rule it broke."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        # The key may hold control characters: show it escaped so logs stay one line.
        super().__init__(f"invalid key {key[:200]!r}: {reason}")


class SettingsError(ContractError):
    """Settings are missing or invalid at start; the message names every offending variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))


class StitchError(ContractError):
    """Chunk transcripts and manifest disagree (other session, duplicate index, ...)."""


class IncompleteSessionError(StitchError):
    """The session cannot be stitched yet: chunks are missing."""

    def __init__(self, session_id: str, missing: tuple[int, ...]) -> None:
        self.session_id = session_id
        self.missing = missing
        shown = ", ".join(str(i) for i in missing[:20]) + (" ..." if len(missing) > 20 else "")
        super().__init__(
            f"session {session_id!r} is incomplete: {len(missing)} chunk(s) missing ({shown})"
        )
