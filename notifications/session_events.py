"""The seam the router and the worker tell about a session's progress, and the do-nothing side
of it for when notifications are off (``NOTIFICATIONS_ENABLED=false``) or not wired (tests).

The real implementation is :class:`notifications.notifier.Notifier`: EventBridge events, signed
webhooks and failure records. Implementations never raise into the transcription path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from transcript_contracts.models import Manifest
    from transcript_store import StitchOutcome


class SessionEvents(Protocol):
    """What the router and the worker call as they work."""

    def session_stitched(
        self, outcome: StitchOutcome, *, bucket: str | None = None, manifest: Manifest | None = None
    ) -> None:
        """A stitch finished; only the outcome "stitched" (the one winning write of
        ``session.json``, P8) is announced. ``manifest``: the session's, if the caller has it."""

    def chunk_failed(self, bucket: str, key: str, reason: str) -> None:
        """The chunk's audio was given up on (undecodable, oversized). The worker calls this on
        every receive that fails (up to the queue's maxReceiveCount); one event per version."""


class NotificationsOff:
    """Tells no one: notifications are turned off, or nothing was wired in."""

    def session_stitched(
        self, outcome: StitchOutcome, *, bucket: str | None = None, manifest: Manifest | None = None
    ) -> None:
        return None

    def chunk_failed(self, bucket: str, key: str, reason: str) -> None:
        return None

    def wait_for_deliveries(self, timeout_s: float | None = None) -> int:
        """Nothing runs in the background: nothing is left."""
        return 0
