"""Typed errors of the conversion tooling (CTranslate2 import, the offline default model).

They derive from the engine's ``ModelError``, so a caller that catches the engine's errors
(``WhisperEngineError``) still catches these; the engine itself never raises them.
"""

from __future__ import annotations

from whisper_engine.errors import ModelError


class ModelConversionError(ModelError):
    """A CTranslate2 checkpoint cannot be converted into a transformers checkpoint."""


class TruncatedModelError(ModelConversionError):
    """The CTranslate2 ``model.bin`` ends before all of its declared variables were read."""

    def __init__(self, path: str, variable_index: int, variable_count: int, detail: str) -> None:
        super().__init__(
            f"{path}: model.bin is truncated: it ends at variable {variable_index} of "
            f"{variable_count} ({detail})"
        )
        self.path = path
        self.variable_index = variable_index
        self.variable_count = variable_count


class ModelPrepareError(ModelError):
    """The default model could not be fetched or installed."""
