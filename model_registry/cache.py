"""The local model cache: one directory per (registry model, version), verified once.

Layout under ``MODEL_CACHE_DIR`` (default ``~/.cache/smart-router/models``)::

    <name>-<h8>/<version>/            h8: hash of the model's s3:// address (two registries apart)
        .lock                         flock: one process downloads a version at a time
        manifest.json                 the manifest as downloaded
        verified.json                 written last: the manifest's sha256 it was verified against
        .incoming/                    downloads in progress (never loaded)
        <name>/...                    the model files; the engine loads this directory

Only validated names reach the file system: the model name and version follow the registry's
grammar and every manifest path is checked (``check_file_path``) and resolved inside the model
directory. No S3 key is ever used as a path as such (docs/design.md P9).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from model_registry.errors import ManifestError, ModelFetchError, ModelFileError
from model_registry.manifest import ModelManifest, sha256_bytes
from model_registry.uri import VERSION_RE, ModelLocation

logger = logging.getLogger(__name__)

MARKER_NAME: Final = "verified.json"
MANIFEST_COPY: Final = "manifest.json"
INCOMING_DIR: Final = ".incoming"
LOCK_NAME: Final = ".lock"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "smart-router" / "models"


@dataclass(frozen=True)
class VersionDir:
    """Where one version of one model lives in the cache."""

    root: Path  # <cache>/<name>-<h8>/<version>
    name: str

    @property
    def model_dir(self) -> Path:
        return self.root / self.name

    @property
    def incoming(self) -> Path:
        return self.root / INCOMING_DIR

    @property
    def marker(self) -> Path:
        return self.root / MARKER_NAME

    @property
    def manifest_copy(self) -> Path:
        return self.root / MANIFEST_COPY

    def target(self, path: str) -> Path:
        """The file for a manifest path; refuses anything that would land outside."""
        target = (self.model_dir / path).resolve()
        if not target.is_relative_to(self.model_dir.resolve()):
            raise ModelFileError(path, "resolves outside the model directory")
        return target


def model_root(cache_dir: Path, location: ModelLocation) -> Path:
    digest = hashlib.sha256(location.model_uri.encode()).hexdigest()[:8]
    return cache_dir / f"{location.name}-{digest}"


def version_dir(cache_dir: Path, location: ModelLocation, version: str) -> VersionDir:
    return VersionDir(model_root(cache_dir, location) / version, location.name)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = (directory / LOCK_NAME).open("a")
    except OSError as exc:
        raise ModelFetchError(f"cannot use the model cache at {directory}: {exc}") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def model_files(model_dir: Path) -> set[str]:
    if not model_dir.is_dir():
        return set()
    return {
        p.relative_to(model_dir).as_posix()
        for p in model_dir.rglob("*")
        if p.is_file() or p.is_symlink()
    }


def marker_matches(entry: VersionDir, manifest: ModelManifest, manifest_sha256: str) -> bool:
    """The cache was verified against exactly this manifest and still has every file at its
    size and nothing else (a cheap check: hashes were checked when the marker was written)."""
    try:
        marker = json.loads(entry.marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("manifest_sha256") != manifest_sha256:
        return False
    expected = {f.path: f.size for f in manifest.files}
    if model_files(entry.model_dir) != set(expected):
        return False
    for path, size in expected.items():
        target = entry.model_dir / path
        if target.is_symlink() or target.stat().st_size != size:
            return False
    return True


def cached_manifest(entry: VersionDir) -> tuple[ModelManifest, str] | None:
    """The manifest a verified cache entry was checked against, if the entry is complete."""
    try:
        raw = entry.manifest_copy.read_bytes()
    except OSError:
        return None
    try:
        manifest = ModelManifest.from_bytes(raw, what=str(entry.manifest_copy))
    except ManifestError:
        return None
    digest = sha256_bytes(raw)
    if not marker_matches(entry, manifest, digest):
        return None
    return manifest, digest


def write_marker(entry: VersionDir, raw_manifest: bytes, manifest: ModelManifest) -> None:
    _write_atomic(entry.manifest_copy, raw_manifest)
    marker: dict[str, Any] = {
        "version": manifest.version,
        "manifest_sha256": sha256_bytes(raw_manifest),
        "files": len(manifest.files),
        "bytes": manifest.total_size,
        "verified_at": datetime.now(UTC).isoformat(),
    }
    _write_atomic(entry.marker, (json.dumps(marker, indent=2) + "\n").encode())


def drop_marker(entry: VersionDir) -> None:
    entry.marker.unlink(missing_ok=True)


def remove_strays(entry: VersionDir, manifest: ModelManifest) -> None:
    """Files the manifest does not list would be loaded too (a stray pytorch_model.bin...)."""
    listed = {f.path for f in manifest.files}
    for path in sorted(model_files(entry.model_dir) - listed):
        logger.warning("removing %s from the model cache: not in the manifest", path)
        (entry.model_dir / path).unlink()


def prune_other_versions(entry: VersionDir) -> None:
    """Drop the other cached versions of this model that no process is fetching right now."""
    for sibling in entry.root.parent.iterdir():
        if sibling == entry.root or not VERSION_RE.match(sibling.name) or not sibling.is_dir():
            continue
        lock_path = sibling / LOCK_NAME
        try:
            with lock_path.open("a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                shutil.rmtree(sibling)
        except OSError as exc:
            logger.warning("could not remove the old cached version %s: %s", sibling, exc)
            continue
        logger.info("removed the old cached model version %s", sibling)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
