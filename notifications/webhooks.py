"""Signed webhook deliveries (see :mod:`notifications.signing` for the headers).

- The URL follows the URL-input rules (docs/design.md P17,
  :mod:`transcript_contracts.url_safety`): https, no userinfo, an ASCII host, every resolved
  address public; the request goes to the checked address (``Host`` header and TLS SNI carry
  the name), redirects are never followed, no proxies.
- Each attempt is one exchange under one deadline of ``WEBHOOK_TIMEOUT_S``: connect, TLS,
  request and the answer's headers together (:mod:`outbound_http.deadline`), so a
  receiver trickling its headers cannot hold the router or a worker thread longer.
- Retries: transport errors (a missed deadline included), 429 and 5xx, with exponential backoff
  (``WEBHOOK_BACKOFF_S``, doubled each time, at most :data:`MAX_BACKOFF_S`) up to
  ``WEBHOOK_MAX_ATTEMPTS`` attempts; 2xx ends it (no duplicate after a success); 3xx and other
  4xx are final. Each attempt is signed afresh (its own timestamp).
- The receiver's answer body is never read.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from notifications.errors import (
    SecretError,
    WebhookDeliveryError,
    WebhookRefusedError,
    WebhookRejectedError,
)
from notifications.signing import EVENT_HEADER, EVENT_ID_HEADER, sign
from outbound_http.deadline import Deadline, DeadlineTransport, new_ssl_context
from transcript_contracts.url_safety import CheckedUrl, UnsafeUrlError, check_url
from transcript_store.ssm_secret import SsmSecret

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from pydantic import SecretStr

logger = logging.getLogger(__name__)

MAX_BACKOFF_S: Final = 30.0
USER_AGENT: Final = "smart-transcription-router-webhook/1"
UrlChecker = Callable[[str], CheckedUrl]


def describe_destination(url: str) -> str:
    """Scheme and host of a URL, for logs and records (paths and queries may hold tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<malformed URL>"
    return f"{parts.scheme or '?'}://{host}{port}"


class WebhookSecretSource(SsmSecret):
    """The signing key: from settings (local runs) or an SSM SecureString read once and cached.
    Never logged, never in a repr."""

    def __init__(
        self,
        *,
        secret: SecretStr | None,
        parameter: str | None,
        ssm: Callable[[], SSMClient],
    ) -> None:
        super().__init__(
            value=secret,
            parameter=parameter,
            ssm=ssm,
            error=SecretError,
            missing="neither WEBHOOK_SECRET nor WEBHOOK_SECRET_PARAMETER is set",
            what="webhook signing key",
        )


class _RetryableError(Exception):
    """One attempt failed in a way worth another (transport error, 429, 5xx)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook that was accepted: after how many attempts, with which status."""

    destination: str
    attempts: int
    status_code: int


class WebhookSender:
    """POSTs signed notification bodies; raises a WebhookError subclass when it gives up.

    ``client``: None (production): each attempt gets its own connection under the attempt's
    deadline, without redirects or proxies. A client given here is used as it is, bounded only
    by its own per-operation timeouts (tests' mock transports and loopback receivers);
    ``check``: the URL policy (P17 by default; tests inject one that admits their loopback
    receiver); ``sleep`` and ``clock``: injected so tests neither wait nor depend on time.
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        max_attempts: int,
        backoff_s: float,
        client: httpx.Client | None = None,
        check: UrlChecker = check_url,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._timeout_s = timeout_s
        self._timeout = httpx.Timeout(timeout_s)
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._client = client
        self._ssl_lock = threading.Lock()
        self._ssl_context: ssl.SSLContext | None = None
        self._check = check
        self._sleep = sleep
        self._clock = clock

    def _http(self, deadline: Deadline) -> AbstractContextManager[httpx.Client]:
        """The client for one attempt: the injected one (left open), or a fresh one whose every
        socket operation obeys ``deadline`` (closed after the attempt)."""
        if self._client is not None:
            return nullcontext(self._client)
        with self._ssl_lock:
            if self._ssl_context is None:
                self._ssl_context = new_ssl_context()
            context = self._ssl_context
        return httpx.Client(
            transport=DeadlineTransport(deadline, ssl_context=context),
            follow_redirects=False,
            trust_env=False,
            timeout=self._timeout,
        )

    def deliver(
        self, url: str, *, secret: str, detail_type: str, event_id: str, body: bytes
    ) -> Delivery:
        destination = describe_destination(url)
        try:
            checked = self._check(url)
        except UnsafeUrlError as exc:
            raise WebhookRefusedError(f"callback URL refused: {exc}") from exc
        attempts = 0

        def attempt() -> int:
            nonlocal attempts
            attempts += 1
            return self._attempt(checked, secret, detail_type, event_id, body)

        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_exponential(multiplier=self._backoff_s, max=MAX_BACKOFF_S),
            retry=retry_if_exception_type(_RetryableError),
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(destination, state),
            reraise=True,
        )
        try:
            status = retrying(attempt)
        except _RetryableError as exc:
            raise WebhookDeliveryError(
                f"{destination}: gave up after {attempts} attempt(s), last: {exc}",
                attempts=attempts,
            ) from exc
        except (WebhookRejectedError, WebhookRefusedError) as exc:
            exc.attempts = attempts
            raise
        logger.info(
            "webhook delivered",
            extra={"destination": destination, "attempts": attempts, "event_id": event_id},
        )
        return Delivery(destination, attempts, status)

    def _attempt(
        self, checked: CheckedUrl, secret: str, detail_type: str, event_id: str, body: bytes
    ) -> int:
        headers = {
            "Host": checked.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: detail_type,
            EVENT_ID_HEADER: event_id,
            **sign(secret, int(self._clock()), body),
        }
        extensions = {"sni_hostname": checked.host} if checked.scheme == "https" else {}
        deadline = Deadline(self._timeout_s)
        with self._http(deadline) as client:
            try:
                request = client.build_request(
                    "POST",
                    checked.url_for_address(),
                    content=body,
                    headers=headers,
                    extensions=extensions,
                    timeout=self._timeout,
                )
            except (httpx.InvalidURL, UnicodeEncodeError) as exc:
                # Nothing was sent: a URL or header httpx cannot put on the wire.
                raise WebhookRefusedError(f"callback URL refused: {exc}") from exc
            try:
                response = client.send(request, stream=True, follow_redirects=False)
            except httpx.HTTPError as exc:
                late = " (over the attempt's deadline)" if deadline.expired else ""
                raise _RetryableError(f"{type(exc).__name__}: {exc}{late}") from exc
            # The answer's body is never read: its status is all a delivery needs.
            response.close()
        status = response.status_code
        if 200 <= status < 300:
            return status
        if status == 429 or status >= 500:
            raise _RetryableError(f"HTTP {status}")
        raise WebhookRejectedError(
            f"{describe_destination(checked.url)} answered HTTP {status} (not retried)"
        )


def _log_retry(destination: str, state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    logger.warning(
        "webhook attempt %d failed (%s), retrying in %.2f s",
        state.attempt_number,
        error,
        wait,
        extra={"destination": destination},
    )
