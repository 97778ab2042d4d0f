"""S3 input for /transcribe-s3: only configured buckets, size-capped, into a temp file (P9, P17)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from server.errors import ForbiddenInputError, PayloadTooLargeError, UpstreamError
from transcript_contracts.keys import S3Location
from transcript_store import StorageError, TranscriptStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class S3Object:
    location: S3Location
    etag: str
    size: int


def check_bucket(location: S3Location, allowed: list[str], what: str) -> None:
    if location.bucket not in allowed:
        raise ForbiddenInputError(f"{what} bucket {location.bucket!r} is not in ALLOWED_BUCKETS")


def download(
    s3: S3Client, location: S3Location, max_bytes: int, directory: Path
) -> tuple[S3Object, Path]:
    """HEAD for size and ETag, then download to a temp file whose name owes nothing to the key."""
    try:
        head = s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise ForbiddenInputError(f"{location.uri} does not exist") from exc
        raise UpstreamError(f"S3 HEAD {location.uri} failed with {status}") from exc
    size = int(head["ContentLength"])
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"{location.uri} is {size} bytes, over the {max_bytes}-byte limit (MAX_DOWNLOAD_BYTES)"
        )
    etag = head["ETag"].strip('"')
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="s3-input-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            # IfMatch pins the object we sized: a swap between HEAD and GET fails, never mixes.
            body = s3.get_object(Bucket=location.bucket, Key=location.key, IfMatch=head["ETag"])[
                "Body"
            ]
            for part in body.iter_chunks(1024 * 1024):
                handle.write(part)
                if handle.tell() > max_bytes:
                    raise PayloadTooLargeError(
                        f"{location.uri} grew over the {max_bytes}-byte limit"
                    )
    except ClientError as exc:
        path.unlink(missing_ok=True)
        raise UpstreamError(
            f"S3 GET {location.uri} failed: {exc.response.get('Error', {}).get('Code')}"
        ) from exc
    except PayloadTooLargeError:
        path.unlink(missing_ok=True)
        raise
    return S3Object(location, etag, size), path


def exists(s3: S3Client, location: S3Location) -> bool:
    """HEAD through the shared store: 404 False, 403 and other failures raise (P3)."""
    try:
        return TranscriptStore(s3).transcript_exists(location.bucket, location.key)
    except StorageError as exc:
        raise UpstreamError(str(exc)) from exc


def read_json(s3: S3Client, location: S3Location) -> bytes:
    return s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()


def put_create_only(s3: S3Client, location: S3Location, body: bytes, content_type: str) -> bool:
    """Write only if absent (P7). True: we wrote it; False: someone else had (412)."""
    try:
        return TranscriptStore(s3).put_create_only(
            location.bucket, location.key, body, content_type
        )
    except StorageError as exc:
        raise UpstreamError(str(exc)) from exc
