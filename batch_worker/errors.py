"""Typed errors of the batch worker."""

from __future__ import annotations


class WorkerError(Exception):
    """Base of every error the batch worker raises on purpose."""


class QueueError(WorkerError):
    """SQS answered an error or could not be reached."""

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"SQS {operation} failed: {detail}")


class InvalidMessageError(WorkerError):
    """A queue message is not a valid work item (bad JSON, bad key, other bucket)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ChunkInputError(WorkerError):
    """The chunk's audio cannot be used: missing, too large or undecodable. Retrying the same
    object will not help; the message is left for redrive and reaches the DLQ."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
