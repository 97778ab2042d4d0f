"""In-flight messages: visibility renewed while in work (P11), released on a stop (P14)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final

from batch_worker.errors import QueueError
from batch_worker.queue import MAX_VISIBILITY_TOTAL_S, ReceivedMessage, WorkQueue

logger = logging.getLogger(__name__)

# SQS rejects a visibility that would end past 12 h from the first receive: stop short of it.
_CAP_MARGIN_S: Final = 5


class StopControl:
    """A stop request (spot notice, SIGTERM, deadline): the first reason wins, and in-flight
    messages are released ``within_s`` after it unless their work finished first."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._event = threading.Event()
        self.reason: str | None = None
        self.release_at: float | None = None
        self.changed = threading.Event()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str, within_s: float | None = None) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
                logger.warning("stop requested", extra={"stop_reason": reason})
            if within_s is not None:
                at = self._monotonic() + max(0.0, within_s)
                self.release_at = at if self.release_at is None else min(self.release_at, at)
            self._event.set()
        self.changed.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


class Heartbeat:
    """Tracks in-flight messages; a daemon thread renews their visibility every
    ``interval_s`` and releases them (visibility 0) once the stop's grace is over."""

    def __init__(
        self,
        queue: WorkQueue,
        *,
        visibility_timeout_s: int,
        interval_s: float,
        stop: StopControl,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._visibility_timeout_s = visibility_timeout_s
        self._interval_s = interval_s
        self._stop = stop
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._tracked: dict[str, ReceivedMessage] = {}
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.extensions = 0

    # -- registry (main thread) ------------------------------------------------------------

    def track(self, messages: Iterable[ReceivedMessage]) -> None:
        with self._lock:
            for message in messages:
                self._tracked[message.receipt_handle] = message

    def untrack(self, message: ReceivedMessage) -> bool:
        """Stop renewing ``message``; False when it was already released."""
        with self._lock:
            return self._tracked.pop(message.receipt_handle, None) is not None

    def in_flight(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._tracked.values())

    def set_visibility(self, messages: Iterable[ReceivedMessage], seconds: int, why: str) -> None:
        """Untrack ``messages`` and give them ``seconds`` of visibility (0: release now)."""
        with self._lock:
            chosen = [m for m in messages if self._tracked.pop(m.receipt_handle, None)]
        if not chosen:
            return
        try:
            self._queue.change_visibility([(m, seconds) for m in chosen])
        except QueueError as exc:
            # The old timeout still runs out: the message comes back later, nothing is lost.
            logger.warning("visibility change failed (%s): %s", why, exc)
            return
        logger.info(
            "messages returned to the queue",
            extra={"why": why, "count": len(chosen), "visible_in_s": seconds},
        )

    def release_all(self, why: str) -> None:
        self.set_visibility(self.in_flight(), 0, why)

    # -- thread ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._stop.changed.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_beat = self._monotonic() + self._interval_s
        while not self._closed.is_set():
            wake_at = next_beat
            if self._stop.release_at is not None:
                wake_at = min(wake_at, self._stop.release_at)
            if self._stop.changed.wait(max(0.0, wake_at - self._monotonic())):
                self._stop.changed.clear()
            if self._closed.is_set():
                return
            now = self._monotonic()
            if self._stop.release_at is not None and now >= self._stop.release_at:
                self.release_all(f"stop ({self._stop.reason}): grace period over")
            if now >= next_beat:
                self.extend(now)
                next_beat = now + self._interval_s

    def extend(self, now: float | None = None) -> None:
        """Renew the visibility of every tracked message, capped at 12 h after its receive."""
        now = self._monotonic() if now is None else now
        changes: list[tuple[ReceivedMessage, int]] = []
        for message in self.in_flight():
            left = MAX_VISIBILITY_TOTAL_S - _CAP_MARGIN_S - (now - message.received_at)
            seconds = int(min(self._visibility_timeout_s, left))
            if seconds <= 0:
                logger.error(
                    "message in work for 12 h: visibility can't be extended",
                    extra={"message_id": message.message_id},
                )
                continue
            changes.append((message, seconds))
        if not changes:
            return
        try:
            self._queue.change_visibility(changes)
        except QueueError as exc:
            logger.warning("heartbeat failed, retrying at the next beat: %s", exc)
            return
        self.extensions += 1
