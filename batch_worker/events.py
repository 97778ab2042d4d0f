"""The worker's event seam: what it tells the outside world (notifications) as it works.

The worker calls these from its main thread. Implementations must be quick and must not let a
failed notification stop the queue: the worker logs an event sink's error and carries on.
"""

from __future__ import annotations

from typing import Protocol

from transcript_store import StitchOutcome


class WorkerEvents(Protocol):
    """Hooks for the notification feature; the default does nothing."""

    def session_stitched(self, outcome: StitchOutcome) -> None:
        """This worker wrote the session transcript (its stitch returned "stitched")."""

    def chunk_failed(self, bucket: str, key: str, reason: str) -> None:
        """The chunk's audio could not be decoded; its message is left for redrive (DLQ).

        Called on every receive that fails, so up to the queue's maxReceiveCount times.
        """


class NoopEvents:
    """The default sink: no notifications."""

    def session_stitched(self, outcome: StitchOutcome) -> None:
        return None

    def chunk_failed(self, bucket: str, key: str, reason: str) -> None:
        return None
