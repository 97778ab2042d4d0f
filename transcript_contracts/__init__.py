"""Data contracts shared by the router, the transcription server and the batch worker.

Pure code (pydantic only): key grammar, document models, settings, the stitcher and the
transcript formatters of docs/design.md §2. No AWS, no web framework, no model.
"""

from transcript_contracts.errors import (
    ContractError,
    IncompleteSessionError,
    KeyGrammarError,
    SettingsError,
    StitchError,
)

__all__ = [
    "ContractError",
    "IncompleteSessionError",
    "KeyGrammarError",
    "SettingsError",
    "StitchError",
]
