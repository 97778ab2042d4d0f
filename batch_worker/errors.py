"""Typed errors of the batch worker.

WorkerError
├── QueueError            SQS answered an error or could not be reached
├── InvalidMessageError   a queue message is not a valid work item (left for redrive)
└── ImdsError             instance metadata (spot notices) could not be read
"""

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


class ImdsError(WorkerError):
    """Instance metadata could not be read (not on EC2, network, unexpected answer)."""
