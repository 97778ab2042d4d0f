"""Fetch a chunk from S3 into a temp file: size cap, ETag pin, timeouts (P9, P18).

HEAD for size and ETag, then a GET pinned to that ETag (``IfMatch``: a re-upload between the two
fails instead of mixing two uploads) streamed into a fresh temp file whose name owes nothing to
the key. The client's connect and read timeouts bound each request (:func:`s3_config`); an
overall deadline, checked after the HEAD and between the parts of the body, bounds the whole
fetch (FETCH_TIMEOUT_S on the server): at most the deadline plus one part's read.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from chunk_job.errors import ChunkMissingError, ChunkTooLargeError, TransientChunkError

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_s3 import S3Client

PART_BYTES: Final = 256 * 1024
# A HEAD or GET that takes longer than this to connect is failing, whatever the deadline.
MAX_CONNECT_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Fetched:
    """A downloaded object: the temp file, the ETag read (no quotes) and its size."""

    path: Path
    etag: str
    size: int


def s3_config(fetch_timeout_s: float) -> Config:
    """botocore settings for a client that fetches input: connect and read timeouts within
    the fetch deadline, standard retries (a retry still ends at the deadline's next check)."""
    from botocore.config import Config

    return Config(
        connect_timeout=min(MAX_CONNECT_S, fetch_timeout_s),
        read_timeout=fetch_timeout_s,
        retries={"max_attempts": 3, "mode": "standard"},
    )


class _Deadline:
    def __init__(self, uri: str, timeout_s: float | None) -> None:
        self._uri = uri
        self._timeout_s = timeout_s
        self._at = None if timeout_s is None else time.monotonic() + timeout_s

    def check(self, stage: str) -> None:
        if self._at is not None and time.monotonic() > self._at:
            raise TransientChunkError(
                f"fetching {self._uri} took longer than {self._timeout_s:g} s "
                f"(FETCH_TIMEOUT_S), at the {stage}"
            )


def _failed(operation: str, uri: str, exc: ClientError | BotoCoreError) -> TransientChunkError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = f"HTTP {status}, {error.get('Code') or 'no code'}"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return TransientChunkError(f"S3 {operation} {uri} failed ({detail})")


def _is_missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code != "NoSuchBucket" and (status == 404 or code in ("404", "NoSuchKey", "NotFound"))


def fetch(
    s3: S3Client,
    bucket: str,
    key: str,
    *,
    max_bytes: int,
    directory: Path,
    timeout_s: float | None = None,
) -> Fetched:
    """Download ``s3://bucket/key`` into a new file in ``directory``.

    ChunkMissingError (404) and ChunkTooLargeError are permanent; TransientChunkError covers
    every other S3 or network failure (a 412 from the pinned GET included: the object was
    replaced meanwhile, the next try reads the new one) and a passed deadline.
    """
    uri = f"s3://{bucket}/{key}"
    deadline = _Deadline(uri, timeout_s)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _is_missing(exc):
            raise ChunkMissingError(f"{uri} does not exist (deleted?)") from exc
        raise _failed("HEAD", uri, exc) from exc
    except BotoCoreError as exc:
        raise _failed("HEAD", uri, exc) from exc
    deadline.check("HEAD")
    size = int(head["ContentLength"])
    if size > max_bytes:
        raise ChunkTooLargeError(
            f"{uri} is {size} bytes, over the {max_bytes}-byte limit (MAX_DOWNLOAD_BYTES)"
        )
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="chunk-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            body = s3.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
            try:
                for part in body.iter_chunks(PART_BYTES):
                    handle.write(part)
                    if handle.tell() > max_bytes:
                        raise ChunkTooLargeError(
                            f"{uri} grew over the {max_bytes}-byte limit (MAX_DOWNLOAD_BYTES)"
                        )
                    deadline.check("download")
            finally:
                body.close()
    except ClientError as exc:
        path.unlink(missing_ok=True)
        if _is_missing(exc):
            raise ChunkMissingError(f"{uri} does not exist (deleted?)") from exc
        raise _failed("GET", uri, exc) from exc
    except BotoCoreError as exc:
        path.unlink(missing_ok=True)
        raise _failed("GET", uri, exc) from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Fetched(path, head["ETag"].strip('"'), size)
