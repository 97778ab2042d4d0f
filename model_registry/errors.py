"""Typed errors of the model registry.

Fetching a model is part of loading it: ``ModelFetchError`` derives from the engine's
``ModelLoadError``, so the server (``/health`` 503 with the reason) and the worker (exit
non-zero before touching the queue) treat a missing, truncated or altered file exactly like a
model that does not load. Every message names the file or object at fault.
"""

from __future__ import annotations

from whisper_engine.errors import ModelError, ModelLoadError


class ModelRegistryError(ModelError):
    """Base class of every error this package raises on purpose."""


class RegistryUriError(ModelRegistryError, ValueError):
    """A registry address is not ``s3://BUCKET/PREFIX/NAME/`` (optionally ``.../v-<hash>/``)."""


class PublishError(ModelRegistryError):
    """A model directory cannot be published (not a model, unreadable, or S3 refused it)."""


class ModelFetchError(ModelRegistryError, ModelLoadError):
    """A registry model cannot be downloaded or verified into the local cache."""


class ManifestError(ModelFetchError):
    """The manifest (or the pointer to it) is missing, unreadable or inconsistent."""


class ModelFileError(ModelFetchError):
    """One file of a model version is missing, truncated or differs from its manifest entry."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"model file {path}: {problem}")
        self.path = path
        self.problem = problem
