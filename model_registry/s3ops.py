"""The few S3 calls of the registry, with errors turned into typed ones that name the object."""

from __future__ import annotations

import base64
import time
from typing import IO, TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from model_registry.errors import ModelRegistryError, PublishError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3 answers 409 ConditionalRequestConflict while another conditional write to the same key is
# in flight; AWS says retry.
_CONFLICT_WAITS_S: Final = (0.1, 0.2, 0.4)
# A single PUT takes at most 5 GiB; no Whisper checkpoint file comes near it.
MAX_PUT_BYTES: Final = 5 * 1024**3


def status_of(exc: ClientError) -> int | None:
    status: int | None = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status


def code_of(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: ClientError) -> bool:
    return status_of(exc) == 404 or code_of(exc) in ("NoSuchKey", "NotFound", "404")


def uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def head(
    s3: S3Client, bucket: str, key: str, *, error: type[ModelRegistryError]
) -> dict[str, Any] | None:
    """HEAD with the stored SHA-256 checksum if any; None when the object does not exist."""
    try:
        response: dict[str, Any] = dict(
            s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        )
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise error(f"S3 HEAD {uri(bucket, key)} failed: {code_of(exc) or status_of(exc)}") from exc
    except BotoCoreError as exc:
        raise error(f"S3 HEAD {uri(bucket, key)} failed: {exc}") from exc
    return response


def get_small(
    s3: S3Client, bucket: str, key: str, *, max_bytes: int, error: type[ModelRegistryError]
) -> tuple[bytes, str] | None:
    """(body, ETag) of a small object (manifest, pointer); None when it does not exist."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
        body = response["Body"].read(max_bytes + 1)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise error(f"S3 GET {uri(bucket, key)} failed: {code_of(exc) or status_of(exc)}") from exc
    except BotoCoreError as exc:
        raise error(f"S3 GET {uri(bucket, key)} failed: {exc}") from exc
    if len(body) > max_bytes:
        raise error(f"{uri(bucket, key)} is larger than {max_bytes} bytes")
    return body, str(response["ETag"])


def put_conditional(
    s3: S3Client,
    bucket: str,
    key: str,
    body: bytes | IO[bytes],
    *,
    sha256_hex: str,
    content_type: str,
    if_match: str | None = None,
) -> bool:
    """PUT create-only (``If-None-Match: *``), or only over the ETag ``if_match``.

    True: written. False: the precondition failed (412): the object exists / changed. S3 checks
    the body against ``sha256_hex`` (``x-amz-checksum-sha256``): a damaged upload is refused.
    """
    checksum = base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")
    condition: dict[str, str] = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
    for attempt, wait in enumerate((*_CONFLICT_WAITS_S, None)):
        if attempt and not isinstance(body, bytes):
            body.seek(0)
        try:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ChecksumSHA256=checksum,
                **condition,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            if status_of(exc) == 412 or code_of(exc) == "PreconditionFailed":
                return False
            if code_of(exc) == "ConditionalRequestConflict" and wait is not None:
                time.sleep(wait)
                continue
            raise PublishError(
                f"S3 PUT {uri(bucket, key)} failed: {code_of(exc) or status_of(exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise PublishError(f"S3 PUT {uri(bucket, key)} failed: {exc}") from exc
        return True
    raise PublishError(f"S3 PUT {uri(bucket, key)}: conflicting writes did not settle")


def stored_sha256(headers: dict[str, Any]) -> str | None:
    """The object's SHA-256 (hex) when S3 stored one for a whole-object upload."""
    value = headers.get("ChecksumSHA256")
    if not value or "-" in str(value):  # "<b64>-N" is a checksum of part checksums
        return None
    try:
        return base64.b64decode(str(value), validate=True).hex()
    except ValueError:
        return None
