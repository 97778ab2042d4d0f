"""How a pydantic ValidationError is told to people, written once: one ``where: what`` line per
error, the location dotted (``segments.0.end``), ``root`` when the error is about the whole
document. Event parsing, queue messages, S3 documents and settings all report through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def error_location(loc: Sequence[int | str], root: str) -> str:
    """``a.0.b`` for a nested field, ``root`` for the document itself."""
    return ".".join(str(part) for part in loc) or root


def validation_problems(
    exc: ValidationError,
    *,
    root: str,
    limit: int | None = None,
    describe: Callable[[ErrorDetails], str] | None = None,
) -> list[str]:
    """One line per error (the first ``limit``); ``describe`` replaces the ``where: what``
    wording (settings name the environment variable instead of the field)."""
    errors = exc.errors(include_url=False)[:limit]
    if describe is not None:
        return [describe(error) for error in errors]
    return [f"{error_location(error['loc'], root)}: {error['msg']}" for error in errors]


def describe_validation_error(exc: ValidationError, *, root: str, limit: int = 5) -> str:
    """The first ``limit`` problems on one line, separated by ``; ``."""
    return "; ".join(validation_problems(exc, root=root, limit=limit))
