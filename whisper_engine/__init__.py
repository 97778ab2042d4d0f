"""Whisper transcription engine: audio decoding, VAD windows, batched Whisper inference.

A plain library shared by the transcription server and the batch worker. Importing this package
does not import torch, transformers or PyAV; the heavy names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from whisper_engine.errors import (
    AudioDecodeError,
    AudioError,
    AudioTooLongError,
    ModelError,
    ModelLoadError,
    TranscriptionError,
    UnsupportedLanguageError,
    WhisperEngineError,
)
from whisper_engine.results import Segment, Timings, TranscriptionResult, Word

if TYPE_CHECKING:
    from whisper_engine.audio import decode_audio, probe_duration
    from whisper_engine.model import DEPLOYMENT_MODEL_ID, default_model_dir
    from whisper_engine.transcriber import EngineOptions, WhisperEngine

_LAZY = {
    "decode_audio": "whisper_engine.audio",
    "probe_duration": "whisper_engine.audio",
    "DEPLOYMENT_MODEL_ID": "whisper_engine.model",
    "default_model_dir": "whisper_engine.model",
    "EngineOptions": "whisper_engine.transcriber",
    "WhisperEngine": "whisper_engine.transcriber",
}

__all__ = [
    "DEPLOYMENT_MODEL_ID",
    "AudioDecodeError",
    "AudioError",
    "AudioTooLongError",
    "EngineOptions",
    "ModelError",
    "ModelLoadError",
    "Segment",
    "Timings",
    "TranscriptionError",
    "TranscriptionResult",
    "UnsupportedLanguageError",
    "WhisperEngine",
    "WhisperEngineError",
    "Word",
    "decode_audio",
    "default_model_dir",
    "probe_duration",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'whisper_engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
