"""Download a registry model into the local cache, verify every file, reuse a verified cache.

``fetch_model("s3://BUCKET/models/NAME/")`` reads ``latest.json`` for the version;
``.../NAME/v-<hash>/`` pins one (and, once cached and verified, starts without any S3 call).
Every file is hashed while it streams in and must match the manifest's size and sha256; a
missing, truncated or altered file raises ``ModelFileError`` naming it. There is no fallback to
another version or another model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from model_registry import cache, s3ops
from model_registry.errors import ManifestError, ModelFetchError, ModelFileError
from model_registry.manifest import (
    HASH_CHUNK_BYTES,
    MAX_MANIFEST_BYTES,
    ManifestFile,
    ModelManifest,
    hash_file,
    sha256_bytes,
)
from model_registry.pointer import read_pointer
from model_registry.uri import ModelLocation, parse_model_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

DOWNLOAD_ATTEMPTS: Final = 3
DOWNLOAD_WORKERS: Final = 4
# Room left on the cache's file system beyond the model itself.
FREE_SPACE_MARGIN_BYTES: Final = 256 * 1024 * 1024


@dataclass(frozen=True)
class LocalModel:
    """A verified model version in the local cache."""

    path: Path  # the directory to load
    location: ModelLocation  # pinned to the version
    manifest: ModelManifest
    downloaded_bytes: int
    from_cache: bool  # nothing was downloaded
    seconds: float

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "uri": self.location.uri,
            "name": self.name,
            "version": self.version,
            "files": len(self.manifest.files),
            "bytes": self.manifest.total_size,
            "downloaded_bytes": self.downloaded_bytes,
            "from_cache": self.from_cache,
            "seconds": round(self.seconds, 2),
        }


def fetch_model(
    model_uri: str, *, s3: S3Client, cache_dir: str | os.PathLike[str] | None = None
) -> LocalModel:
    """The verified local copy of the model at ``model_uri``, downloading what is missing."""
    started = time.perf_counter()
    location = parse_model_uri(model_uri)
    root = Path(cache_dir) if cache_dir else cache.default_cache_dir()
    if location.version is not None:
        entry = cache.version_dir(root, location, location.version)
        with cache.locked(entry.root):
            reused = cache.cached_manifest(entry)
        if reused is not None and reused[0].name == location.name:
            return _done(entry, location, reused[0], 0, started)
        version = location.version
    else:
        version = _latest_version(s3, location)
    pinned = location.pinned(version)
    entry = cache.version_dir(root, location, version)
    with cache.locked(entry.root):
        raw, manifest = _read_manifest(s3, pinned)
        if cache.marker_matches(entry, manifest, sha256_bytes(raw)):
            return _done(entry, pinned, manifest, 0, started)
        cache.drop_marker(entry)
        downloaded = _download_and_verify(s3, pinned, manifest, entry)
        cache.write_marker(entry, raw, manifest)
    cache.prune_other_versions(entry)
    return _done(entry, pinned, manifest, downloaded, started)


def _done(
    entry: cache.VersionDir,
    location: ModelLocation,
    manifest: ModelManifest,
    downloaded: int,
    started: float,
) -> LocalModel:
    local = LocalModel(
        entry.model_dir,
        location.pinned(manifest.version),
        manifest,
        downloaded,
        downloaded == 0,
        time.perf_counter() - started,
    )
    logger.info(
        "model %s %s ready in %s: %d file(s), %.1f MB, %.1f MB downloaded, %.2f s%s",
        manifest.name,
        manifest.version,
        entry.model_dir,
        len(manifest.files),
        manifest.total_size / 1e6,
        downloaded / 1e6,
        local.seconds,
        " (verified cache)" if local.from_cache else "",
    )
    return local


def _latest_version(s3: S3Client, location: ModelLocation) -> str:
    found = read_pointer(s3, location, error=ManifestError)
    if found is None:
        raise ManifestError(
            f"{s3ops.uri(location.bucket, location.pointer_key)} does not exist: nothing was "
            f"published at {location.model_uri} (smart-router model publish DIR "
            f"{location.model_uri})"
        )
    version: str = found[0]["version"]
    return version


def _read_manifest(s3: S3Client, location: ModelLocation) -> tuple[bytes, ModelManifest]:
    version = location.version or ""
    key = location.manifest_key(version)
    address = s3ops.uri(location.bucket, key)
    found = s3ops.get_small(
        s3, location.bucket, key, max_bytes=MAX_MANIFEST_BYTES, error=ManifestError
    )
    if found is None:
        raise ManifestError(
            f"{address} does not exist: version {version} was never completely published "
            "(an interrupted publish leaves files without a manifest)"
        )
    raw = found[0]
    manifest = ModelManifest.from_bytes(raw, what=address)
    if manifest.version != version or manifest.name != location.name:
        raise ManifestError(
            f"{address} describes {manifest.name} {manifest.version}, not {location.name} {version}"
        )
    return raw, manifest


def _download_and_verify(
    s3: S3Client, location: ModelLocation, manifest: ModelManifest, entry: cache.VersionDir
) -> int:
    """Keep the cached files that verify, download the rest; returns the bytes downloaded."""
    entry.model_dir.mkdir(parents=True, exist_ok=True)
    cache.remove_strays(entry, manifest)
    needed: list[ManifestFile] = []
    for item in manifest.files:
        target = entry.target(item.path)
        if target.is_file() and not target.is_symlink() and target.stat().st_size == item.size:
            # Left by an interrupted fetch: keep it only if every byte verifies.
            if hash_file(target)[1] == item.sha256:
                continue
            logger.warning("cached %s does not match the manifest: downloading it again", item.path)
        if target.exists() or target.is_symlink():
            target.unlink()
        needed.append(item)
    if not needed:
        return 0
    _check_free_space(entry.root, sum(item.size for item in needed))
    shutil.rmtree(entry.incoming, ignore_errors=True)
    entry.incoming.mkdir(parents=True)
    try:
        with ThreadPoolExecutor(
            max_workers=min(DOWNLOAD_WORKERS, len(needed)), thread_name_prefix="model-fetch"
        ) as pool:
            futures = [
                pool.submit(_download_one, s3, location, item, entry, index)
                for index, item in enumerate(needed)
            ]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            for future in done:
                future.result()  # raises the first failure, naming its file
    finally:
        shutil.rmtree(entry.incoming, ignore_errors=True)
    return sum(item.size for item in needed)


def _download_one(
    s3: S3Client, location: ModelLocation, item: ManifestFile, entry: cache.VersionDir, index: int
) -> None:
    version = location.version or ""
    key = location.file_key(version, item.path)
    address = s3ops.uri(location.bucket, key)
    # Index-named: a manifest path never becomes a temporary file name.
    partial = entry.incoming / f"{index}.part"
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            digest = _stream(s3, location.bucket, key, item, partial)
            break
        except (BotoCoreError, OSError) as exc:
            partial.unlink(missing_ok=True)
            if attempt == DOWNLOAD_ATTEMPTS:
                raise ModelFileError(
                    item.path, f"download of {address} failed {attempt} times: {exc}"
                ) from exc
            logger.warning("download of %s failed (%s): trying again", address, exc)
            time.sleep(0.5 * attempt)
        except ClientError as exc:
            if s3ops.is_not_found(exc):
                raise ModelFileError(item.path, f"missing: {address} does not exist") from exc
            raise ModelFileError(
                item.path, f"S3 GET {address} failed: {s3ops.code_of(exc) or s3ops.status_of(exc)}"
            ) from exc
    if digest != item.sha256:
        partial.unlink(missing_ok=True)
        raise ModelFileError(
            item.path,
            f"sha256 {digest} differs from the manifest's {item.sha256}: {address} was altered "
            "or corrupted",
        )
    target = entry.target(item.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, target)


def _stream(s3: S3Client, bucket: str, key: str, item: ManifestFile, partial: Path) -> str:
    response = s3.get_object(Bucket=bucket, Key=key)
    length = int(response["ContentLength"])
    if length != item.size:
        response["Body"].close()
        what = "truncated (a partial upload?)" if length < item.size else "larger"
        raise ModelFileError(
            item.path,
            f"{s3ops.uri(bucket, key)} is {length} bytes, the manifest says {item.size}: {what}",
        )
    digest = hashlib.sha256()
    received = 0
    with partial.open("wb") as out:
        for chunk in response["Body"].iter_chunks(HASH_CHUNK_BYTES):
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
    if received != item.size:
        # Treated as a transport failure (retried): the connection ended early.
        raise OSError(f"received {received} of {item.size} bytes")
    return digest.hexdigest()


def _check_free_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed + FREE_SPACE_MARGIN_BYTES:
        raise ModelFetchError(
            f"the model cache {directory} has {free / 1e9:.2f} GB free; the model needs "
            f"{needed / 1e9:.2f} GB more (MODEL_CACHE_DIR on a larger volume?)"
        )
