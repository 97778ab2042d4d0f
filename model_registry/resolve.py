"""What the server and the worker call at start: a registry MODEL_ID becomes a verified local
directory (anything else is left to the engine as it is).

Imports boto3 only when MODEL_ID is an ``s3://`` address; never imports the converter.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from model_registry.fetch import LocalModel, fetch_model
from model_registry.uri import is_registry_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The one log line (at ERROR) for a model that cannot be loaded, in the server and the worker:
# the CloudWatch metric filter behind the "model cannot load" alarm matches this text.
LOAD_FAILED_MESSAGE: Final = "model load failed"


def registry_client() -> S3Client:
    """An S3 client with explicit timeouts; AWS_ENDPOINT_URL (moto locally) is boto3's own."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"}
    )
    return boto3.client("s3", config=config)


def fetch_if_registry(
    model_id: str | None,
    cache_dir: str | os.PathLike[str] | None,
    *,
    s3: S3Client | None = None,
) -> LocalModel | None:
    """The verified local copy when ``model_id`` is ``s3://...``; None for anything else."""
    if model_id is None or not is_registry_uri(model_id):
        return None
    return fetch_model(model_id, s3=s3 or registry_client(), cache_dir=cache_dir)
