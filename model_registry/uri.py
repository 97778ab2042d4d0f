"""Registry addresses: ``s3://BUCKET/PREFIX/NAME/`` and the keys of one model under it.

Layout of a model ``NAME`` under ``s3://BUCKET/PREFIX/NAME/``::

    latest.json                       pointer: {"version": "v-<hash>", "manifest_sha256": ...}
    v-<hash>/manifest.json            create-only; written after every file of the version
    v-<hash>/files/<path>             create-only; <path> as listed in the manifest

A version is content-addressed (``v-`` + 16 hex digits of the manifest's sha256 over its
content), so publishing changed files makes a new version and never overwrites one. Only the
pointer is ever replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from model_registry.errors import RegistryUriError

SCHEME: Final = "s3://"
POINTER_NAME: Final = "latest.json"
MANIFEST_NAME: Final = "manifest.json"
FILES_DIR: Final = "files"

_BUCKET_RE: Final = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Names and prefix segments become S3 keys and (names) cache directory names: a strict grammar.
_SEGMENT_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
VERSION_RE: Final = re.compile(r"^v-[0-9a-f]{16}$")


def is_registry_uri(model_id: str | None) -> bool:
    """True for ``s3://...`` model ids (the registry); local directories and hub ids are not."""
    return model_id is not None and model_id.startswith(SCHEME)


@dataclass(frozen=True, slots=True)
class ModelLocation:
    """One model in the registry, optionally pinned to a version."""

    bucket: str
    prefix: str  # key prefix of the model, ending in "/NAME/"
    name: str
    version: str | None = None

    @property
    def uri(self) -> str:
        pinned = f"{self.version}/" if self.version else ""
        return f"{SCHEME}{self.bucket}/{self.prefix}{pinned}"

    @property
    def model_uri(self) -> str:
        """The address of the model without a version (its latest one)."""
        return f"{SCHEME}{self.bucket}/{self.prefix}"

    @property
    def pointer_key(self) -> str:
        return f"{self.prefix}{POINTER_NAME}"

    def pinned(self, version: str) -> ModelLocation:
        check_version(version)
        return replace(self, version=version)

    def manifest_key(self, version: str) -> str:
        return f"{self.prefix}{version}/{MANIFEST_NAME}"

    def file_key(self, version: str, path: str) -> str:
        return f"{self.prefix}{version}/{FILES_DIR}/{path}"


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise RegistryUriError(f"{version!r} is not a model version (v- and 16 hex digits)")
    return version


def check_name(name: str) -> str:
    if not _SEGMENT_RE.match(name):
        raise RegistryUriError(
            f"model name {name!r} must be 1-128 of A-Z a-z 0-9 _ . - and start with a letter "
            "or digit"
        )
    return name


def parse_model_uri(uri: str) -> ModelLocation:
    """``s3://BUCKET/PREFIX/NAME/`` or ``s3://BUCKET/PREFIX/NAME/v-<hash>/`` (trailing / optional).

    The prefix may be empty (``s3://BUCKET/NAME/``); ``models/NAME/`` is the convention.
    """
    if not uri.startswith(SCHEME):
        raise RegistryUriError(f"{uri!r} is not an s3:// address")
    bucket, _, path = uri[len(SCHEME) :].partition("/")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise RegistryUriError(f"{uri!r}: {bucket!r} is not a valid S3 bucket name")
    segments = [s for s in path.split("/") if s]
    if path.startswith("/") or "//" in path.rstrip("/"):
        raise RegistryUriError(f"{uri!r} has an empty path segment")
    version = None
    if segments and VERSION_RE.match(segments[-1]):
        version = segments.pop()
    if not segments:
        raise RegistryUriError(f"{uri!r} names no model: use s3://{bucket}/models/NAME/")
    for segment in segments:
        if not _SEGMENT_RE.match(segment):
            raise RegistryUriError(
                f"{uri!r}: path segment {segment!r} must be 1-128 of A-Z a-z 0-9 _ . - "
                "starting with a letter or digit"
            )
    if segments[-1] in (POINTER_NAME, MANIFEST_NAME, FILES_DIR):
        raise RegistryUriError(f"{uri!r} points into a model; give the model's directory")
    name = segments[-1]
    return ModelLocation(bucket, "/".join(segments) + "/", name, version)
