"""Spot interruption notices from EC2 instance metadata (IMDSv2), polled on a thread.

IMDSv2: ``PUT /latest/api/token`` gives a session token; ``GET
/latest/meta-data/spot/instance-action`` with it answers 404 while no interruption is
scheduled and 200 ``{"action": "terminate", "time": "2026-11-21T00:02:00Z"}`` once it is.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from batch_worker.errors import ImdsError

logger = logging.getLogger(__name__)

TOKEN_TTL_S: Final = 21_600
# Refresh the token well before IMDS expires it.
_TOKEN_REFRESH_S: Final = TOKEN_TTL_S - 600
_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class SpotNotice:
    action: str
    time: datetime | None  # when EC2 acts; None when the notice carries no parseable time


class ImdsClient:
    """Minimal IMDSv2 client. Never goes through an HTTP proxy: metadata is link-local."""

    def __init__(self, base_url: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._base = base_url.rstrip("/")
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._monotonic = monotonic
        self._token: str | None = None
        self._token_at = 0.0

    def _open(self, request: urllib.request.Request) -> tuple[int, bytes]:
        try:
            with self._opener.open(request, timeout=_TIMEOUT_S) as response:
                return int(response.status), response.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            return exc.code, b""
        except (urllib.error.URLError, OSError) as exc:
            raise ImdsError(f"{request.get_method()} {request.full_url}: {exc}") from exc

    def _fresh_token(self) -> str:
        if self._token is None or self._monotonic() - self._token_at > _TOKEN_REFRESH_S:
            request = urllib.request.Request(  # noqa: S310 - a configured http(s) base URL
                f"{self._base}/latest/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_S)},
            )
            status, body = self._open(request)
            if status != 200 or not body:
                raise ImdsError(f"IMDSv2 token request answered {status}")
            self._token = body.decode("ascii", errors="replace").strip()
            self._token_at = self._monotonic()
        return self._token

    def instance_action(self) -> SpotNotice | None:
        """The pending spot interruption, None when there is none (404)."""
        for _attempt in range(2):
            request = urllib.request.Request(  # noqa: S310 - a configured http(s) base URL
                f"{self._base}/latest/meta-data/spot/instance-action",
                headers={"X-aws-ec2-metadata-token": self._fresh_token()},
            )
            status, body = self._open(request)
            if status == 404:
                return None
            if status == 401:
                # The token expired or IMDS restarted: fetch a new one and ask again.
                self._token = None
                continue
            if status != 200:
                raise ImdsError(f"spot/instance-action answered {status}")
            return _parse_notice(body)
        raise ImdsError("spot/instance-action refused a fresh token (401)")


def _parse_notice(body: bytes) -> SpotNotice:
    try:
        data = json.loads(body)
    except ValueError:
        # A notice we cannot read is still a notice: acting on it is the safe side.
        return SpotNotice(action="unknown", time=None)
    if not isinstance(data, dict):
        return SpotNotice(action="unknown", time=None)
    when: datetime | None = None
    raw = data.get("time")
    if isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            when = None
    return SpotNotice(action=str(data.get("action", "unknown")), time=when)


class SpotWatcher:
    """Polls for a notice every ``interval_s`` on a daemon thread; calls ``on_notice`` once."""

    def __init__(
        self,
        client: ImdsClient,
        interval_s: float,
        on_notice: Callable[[SpotNotice], None],
    ) -> None:
        self._client = client
        self._interval_s = interval_s
        self._on_notice = on_notice
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spot-watcher", daemon=True)
        self._failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=_TIMEOUT_S * 3)

    def _run(self) -> None:
        while not self._stopped.is_set():
            # A cadence, not a pause after each answer: a slow IMDS (reads may take seconds
            # with retries) must not stretch the promised interval between reads (P14).
            next_poll = time.monotonic() + self._interval_s
            try:
                notice = self._client.instance_action()
            except ImdsError as exc:
                # Keep polling: one failed read must not blind the worker for the rest of the
                # night; the first failure is a warning, repeats are debug noise.
                self._failures += 1
                level = logging.WARNING if self._failures == 1 else logging.DEBUG
                logger.log(level, "spot notice poll failed: %s", exc)
                notice = None
            else:
                self._failures = 0
            if notice is not None:
                logger.warning(
                    "spot interruption notice",
                    extra={
                        "action": notice.action,
                        "at": notice.time.isoformat() if notice.time else None,
                    },
                )
                self._on_notice(notice)
                return
            self._stopped.wait(max(0.0, next_poll - time.monotonic()))
