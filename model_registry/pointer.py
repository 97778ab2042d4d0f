"""``latest.json``: the one mutable object of a model, naming its newest published version."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from model_registry import s3ops
from model_registry.errors import ModelRegistryError
from model_registry.manifest import ModelManifest, sha256_bytes
from model_registry.uri import ModelLocation, check_version

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_POINTER_BYTES: Final = 64 * 1024


def read_pointer(
    s3: S3Client, location: ModelLocation, *, error: type[ModelRegistryError]
) -> tuple[dict[str, Any], str] | None:
    """The pointer's content (``version`` checked) and ETag; None when there is none yet."""
    address = s3ops.uri(location.bucket, location.pointer_key)
    found = s3ops.get_small(
        s3, location.bucket, location.pointer_key, max_bytes=MAX_POINTER_BYTES, error=error
    )
    if found is None:
        return None
    raw, etag = found
    try:
        content = json.loads(raw)
    except ValueError as exc:
        raise error(f"{address} is not JSON: {exc}") from exc
    if not isinstance(content, dict) or not isinstance(content.get("version"), str):
        raise error(f"{address} is not a model pointer (no version)")
    try:
        check_version(content["version"])
    except ValueError as exc:
        raise error(f"{address}: {exc}") from exc
    return content, etag


def pointer_bytes(manifest: ModelManifest) -> bytes:
    content = {
        "name": manifest.name,
        "version": manifest.version,
        "manifest_sha256": sha256_bytes(manifest.to_bytes()),
    }
    return (json.dumps(content, indent=2, sort_keys=True) + "\n").encode()
