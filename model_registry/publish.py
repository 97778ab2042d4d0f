"""``smart-router model publish DIR s3://BUCKET/models/NAME/``: upload a version, move the pointer.

Order makes every reader safe: the files first (each create-only), then the manifest
(create-only: its presence means the version is complete), then ``latest.json`` (the only object
ever replaced, and only over the ETag it was read with). Publishing the same directory again
HEADs every object and writes nothing.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_registry import s3ops
from model_registry.errors import PublishError
from model_registry.manifest import (
    MAX_MANIFEST_BYTES,
    ModelManifest,
    build_manifest,
    sha256_bytes,
)
from model_registry.pointer import pointer_bytes, read_pointer
from model_registry.uri import ModelLocation, parse_model_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    location: ModelLocation  # pinned to the published version
    manifest: ModelManifest
    uploaded: tuple[str, ...]  # manifest paths this call uploaded
    present: tuple[str, ...]  # manifest paths that were already there, identical
    manifest_written: bool
    pointer_updated: bool
    seconds: float

    @property
    def changed_nothing(self) -> bool:
        return not (self.uploaded or self.manifest_written or self.pointer_updated)

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.location.uri,
            "name": self.manifest.name,
            "version": self.manifest.version,
            "files": len(self.manifest.files),
            "bytes": self.manifest.total_size,
            "uploaded": list(self.uploaded),
            "already_present": len(self.present),
            "manifest_written": self.manifest_written,
            "latest_updated": self.pointer_updated,
            "seconds": round(self.seconds, 2),
        }


def plan(
    directory: str | os.PathLike[str],
    model_uri: str,
    *,
    languages: list[str] | None = None,
    source: str | None = None,
) -> tuple[ModelLocation, ModelManifest]:
    """The version ``publish`` would create, computed locally (no S3 call)."""
    location = _model_location(model_uri)
    manifest = build_manifest(directory, name=location.name, languages=languages, source=source)
    return location.pinned(manifest.version), manifest


def publish(
    directory: str | os.PathLike[str],
    model_uri: str,
    *,
    s3: S3Client,
    languages: list[str] | None = None,
    source: str | None = None,
    set_latest: bool = True,
) -> PublishResult:
    """Upload ``directory`` as a content-addressed version of the model at ``model_uri``."""
    started = time.perf_counter()
    location, manifest = plan(directory, model_uri, languages=languages, source=source)
    version = manifest.version
    root = Path(directory)
    bucket = location.bucket
    manifest_key = location.manifest_key(version)
    existing = s3ops.get_small(
        s3, bucket, manifest_key, max_bytes=MAX_MANIFEST_BYTES, error=PublishError
    )
    if (
        existing is not None
        and ModelManifest.from_bytes(existing[0], what=s3ops.uri(bucket, manifest_key)) != manifest
    ):
        # Same content hash, different content: only a hand-edited manifest gets here.
        raise PublishError(
            f"{s3ops.uri(bucket, manifest_key)} exists but differs from {root}'s manifest"
        )

    uploaded: list[str] = []
    present: list[str] = []
    for entry in manifest.files:
        key = location.file_key(version, entry.path)
        if _already_there(s3, bucket, key, entry.size, entry.sha256):
            present.append(entry.path)
            continue
        if entry.size > s3ops.MAX_PUT_BYTES:
            raise PublishError(f"{root / entry.path} is over 5 GiB, more than one S3 PUT takes")
        with (root / entry.path).open("rb") as body:
            written = s3ops.put_conditional(
                s3,
                bucket,
                key,
                body,
                sha256_hex=entry.sha256,
                content_type="application/octet-stream",
            )
        if not written and not _already_there(s3, bucket, key, entry.size, entry.sha256):
            raise PublishError(f"{s3ops.uri(bucket, key)} appeared with other content meanwhile")
        (uploaded if written else present).append(entry.path)
        logger.info("uploaded %s (%d bytes)", s3ops.uri(bucket, key), entry.size)

    manifest_written = False
    if existing is None:
        raw = manifest.to_bytes()
        manifest_written = s3ops.put_conditional(
            s3,
            bucket,
            manifest_key,
            raw,
            sha256_hex=sha256_bytes(raw),
            content_type="application/json",
        )
    pointer_updated = set_latest and _point_latest_at(s3, location, manifest)
    result = PublishResult(
        location,
        manifest,
        tuple(uploaded),
        tuple(present),
        manifest_written,
        pointer_updated,
        time.perf_counter() - started,
    )
    logger.info(
        "published %s: %d file(s) uploaded, %d already there%s",
        location.uri,
        len(uploaded),
        len(present),
        ", latest.json updated" if pointer_updated else "",
    )
    return result


def _model_location(model_uri: str) -> ModelLocation:
    location = parse_model_uri(model_uri)
    if location.version is not None:
        raise PublishError(
            f"{model_uri} names a version; publish to the model's address "
            f"({location.model_uri}): versions are derived from the content"
        )
    return location


def _already_there(s3: S3Client, bucket: str, key: str, size: int, sha256_hex: str) -> bool:
    headers = s3ops.head(s3, bucket, key, error=PublishError)
    if headers is None:
        return False
    stored = s3ops.stored_sha256(headers)
    if int(headers["ContentLength"]) == size and stored in (None, sha256_hex):
        # A version's keys are derived from the content, so an object of the right size whose
        # checksum S3 did not keep is still ours; `model fetch` verifies every byte anyway.
        return True
    raise PublishError(
        f"{s3ops.uri(bucket, key)} exists with other content ({headers['ContentLength']} bytes, "
        f"sha256 {stored or 'unknown'}; expected {size} bytes, {sha256_hex}): versions are "
        "never overwritten; delete the object if it is damaged and publish again"
    )


def _point_latest_at(s3: S3Client, location: ModelLocation, manifest: ModelManifest) -> bool:
    current = read_pointer(s3, location, error=PublishError)
    raw = pointer_bytes(manifest)
    if current is not None and current[0].get("version") == manifest.version:
        return False
    written = s3ops.put_conditional(
        s3,
        location.bucket,
        location.pointer_key,
        raw,
        sha256_hex=sha256_bytes(raw),
        content_type="application/json",
        if_match=current[1] if current is not None else None,
    )
    if not written:
        raise PublishError(
            f"{s3ops.uri(location.bucket, location.pointer_key)} changed while this publish ran "
            "(another publish?): the version is uploaded; run the publish again to point "
            "latest.json at it"
        )
    return True
