"""Typed errors of the transcript store; callers decide which ones are retried.

TranscriptStoreError
├── StorageError          S3 answered an unexpected error: never read as "missing" (P3)
├── InvalidDocumentError  an object exists but is not a valid manifest/chunk transcript
└── QueueReadError        SQS GetQueueAttributes failed: the queue's depth is unknown
"""

from __future__ import annotations


class TranscriptStoreError(Exception):
    """Base of every error the transcript store raises."""


class StorageError(TranscriptStoreError):
    """S3 answered something other than the expected outcomes (403, 5xx, throttling, network).

    Never read as "missing": the caller must fail loudly so the work is retried (P3).
    """

    def __init__(
        self,
        operation: str,
        bucket: str,
        key: str,
        *,
        code: str | None = None,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.code = code
        self.status = status
        parts = [f"{operation} s3://{bucket}/{key} failed"]
        if status is not None or code:
            parts.append(f"(HTTP {status}, {code or 'no code'})")
        if detail:
            parts.append(f": {detail}")
        super().__init__(" ".join(parts))


class InvalidDocumentError(TranscriptStoreError):
    """An object exists but is not a valid document (manifest or chunk transcript).

    A data problem, not a transient one: retrying does not help; a re-upload does.
    """

    def __init__(self, bucket: str, key: str, reason: str) -> None:
        self.bucket = bucket
        self.key = key
        self.reason = reason
        super().__init__(f"s3://{bucket}/{key} is not a valid document: {reason}")


class QueueReadError(TranscriptStoreError):
    """SQS could not say how many messages a queue holds (GetQueueAttributes failed)."""

    def __init__(self, queue_url: str, detail: str) -> None:
        self.queue_url = queue_url
        self.detail = detail
        super().__init__(f"GetQueueAttributes on {queue_url} failed: {detail}")
