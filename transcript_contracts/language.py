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


# The languages Whisper knows (its tokenizer's language tokens, large-v3 included), as codes.
# A manifest may state only one of these: anything else is reported once and never passed to
# the engine (docs/design.md §2, "Session language").
WHISPER_LANGUAGES: Final = frozenset(
    # One string, split: a hundred codes one per line would hide the rest of this module.
    (  # noqa: SIM905
        "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta "
        "no th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk "
        "sq sw gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb "
        "my bo tl mg as tt haw ln ha ba jw su yue"
    ).split()
)


def is_supported_language(value: str | None) -> bool:
    """True for a code Whisper can be told (``sv``); False for ``auto``, None and the rest."""
    return value in WHISPER_LANGUAGES
