"""Download a chunk to a temp file (never a path built from the key, P9) and decode it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from batch_worker.errors import ChunkInputError
from transcript_store import StorageError

if TYPE_CHECKING:
    import numpy as np
    from mypy_boto3_s3 import S3Client
    from numpy.typing import NDArray

_PART_BYTES = 1024 * 1024


def _client_error(operation: str, bucket: str, key: str, exc: ClientError) -> StorageError:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return StorageError(operation, bucket, key, code=str(error.get("Code", "")), status=status)


def download(
    s3: S3Client, bucket: str, key: str, max_bytes: int, directory: Path
) -> tuple[Path, str]:
    """HEAD for size and ETag, GET pinned to that ETag into a fresh temp file in ``directory``.

    Returns the file and the ETag read. ChunkInputError: the object is gone or over
    ``max_bytes`` (retrying will not help); StorageError: S3 failed (retrying may).
    """
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise ChunkInputError("the audio object does not exist (deleted?)") from exc
        raise _client_error("HEAD", bucket, key, exc) from exc
    except BotoCoreError as exc:
        raise StorageError("HEAD", bucket, key, detail=str(exc)) from exc
    size = int(head["ContentLength"])
    if size > max_bytes:
        raise ChunkInputError(f"audio is {size} bytes, over MAX_DOWNLOAD_BYTES ({max_bytes})")
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="chunk-", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        with handle:
            # IfMatch pins the object we sized: a swap between HEAD and GET fails (412, retried
            # later), never mixes two uploads.
            body = s3.get_object(Bucket=bucket, Key=key, IfMatch=head["ETag"])["Body"]
            for part in body.iter_chunks(_PART_BYTES):
                handle.write(part)
                if handle.tell() > max_bytes:
                    raise ChunkInputError(f"audio grew over MAX_DOWNLOAD_BYTES ({max_bytes})")
    except ClientError as exc:
        path.unlink(missing_ok=True)
        raise _client_error("GET", bucket, key, exc) from exc
    except BotoCoreError as exc:
        path.unlink(missing_ok=True)
        raise StorageError("GET", bucket, key, detail=str(exc)) from exc
    except ChunkInputError:
        path.unlink(missing_ok=True)
        raise
    return path, head["ETag"].strip('"')


def decode(path: Path, max_duration_s: float) -> NDArray[np.float32]:
    """16 kHz mono float32; ChunkInputError when the audio is undecodable or too long."""
    from whisper_engine.audio import decode_audio
    from whisper_engine.errors import AudioError

    try:
        return decode_audio(path, max_duration_s=max_duration_s)
    except AudioError as exc:
        raise ChunkInputError(f"undecodable audio: {exc}") from exc
