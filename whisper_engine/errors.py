"""Typed errors of the Whisper engine.

Importable without torch, transformers or PyAV so that callers (the server's error mapping, the
worker's dead-letter logic) can catch them without paying for the heavy imports.
"""

from __future__ import annotations


class WhisperEngineError(Exception):
    """Base class of every error this package raises on purpose."""


class AudioError(WhisperEngineError):
    """The audio given to the engine cannot be used."""


class AudioDecodeError(AudioError):
    """The input is not decodable audio: corrupt, empty, truncated or not audio at all."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot decode audio: {reason}")
        self.reason = reason


class AudioTooLongError(AudioError):
    """The audio is longer than the caller's cap; raised before a full decode where possible."""

    def __init__(self, duration_s: float, max_duration_s: float, *, exact: bool = True) -> None:
        qualifier = "" if exact else "at least "
        super().__init__(
            f"audio lasts {qualifier}{duration_s:.1f} s, "
            f"more than the allowed {max_duration_s:.1f} s"
        )
        self.duration_s = duration_s
        self.max_duration_s = max_duration_s


class ModelError(WhisperEngineError):
    """The model cannot be loaded (conversion errors derive from it in ``whisper_convert``)."""


class ModelLoadError(ModelError):
    """A model directory or id cannot be loaded (missing files, not a Whisper checkpoint)."""


class TranscriptionError(WhisperEngineError):
    """Inference failed for a reason other than bad input (for example out of GPU memory)."""


class UnsupportedLanguageError(WhisperEngineError, ValueError):
    """The requested language is unknown to the loaded model (or the model is English-only)."""

    def __init__(self, language: str, why: str) -> None:
        super().__init__(f"language {language!r} is not supported: {why}")
        self.language = language
