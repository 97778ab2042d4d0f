"""The language-code rule, written once: ``auto`` or an ISO 639-1/-3 code in lower case.

Settings (``LANGUAGE``), the server's request fields and the worker's reading of a manifest's
``language`` all use it, so a code one part accepts is never refused by another.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator

# For pydantic ``Field(pattern=...)`` and FastAPI ``Form(pattern=...)``.
LANGUAGE_PATTERN: Final = r"^(auto|[a-z]{2,3})$"
_LANGUAGE_RE: Final = re.compile(LANGUAGE_PATTERN)


def is_language_code(value: str) -> bool:
    """True for ``auto`` and for two- or three-letter lower-case codes such as ``sv``."""
    return _LANGUAGE_RE.match(value) is not None


def check_language(value: str) -> str:
    """``value`` unchanged, or ValueError saying what a language code looks like."""
    if not is_language_code(value):
        raise ValueError("must be 'auto' or an ISO 639-1/-3 code such as 'sv' or 'en'")
    return value


Language = Annotated[str, AfterValidator(check_language)]
