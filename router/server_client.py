"""The transcription server as the router sees it: a truthful health check and a forward with
exponential backoff that never eats the time kept for the fallback queue send (P5, P6).

Every request has explicit connect/read/write/pool timeouts. The bearer key goes only into the
Authorization header and is never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.stop import stop_base

from router.budget import TimeBudget
from router.errors import RetryableStatusError, ServerRejectedError

logger = logging.getLogger(__name__)

RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
# One try plus retries after 1 s, 2 s and 4 s.
MAX_ATTEMPTS: Final = 4
BACKOFF_MIN_S: Final = 1.0
BACKOFF_MAX_S: Final = 4.0
_DETAIL_CHARS: Final = 300


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds for one forward request."""

    connect: float
    read: float

    def as_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect, read=self.read, write=self.connect, pool=self.connect
        )

    @property
    def worst_case_s(self) -> float:
        """The longest one request can take: connect, write and read timeouts in a row."""
        return self.connect + self.connect + self.read


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ForwardResult:
    """``ok``: the server answered 2xx (it wrote the transcript). Otherwise retries ran out."""

    ok: bool
    attempts: int
    status_code: int | None
    detail: str


def _short(text: str) -> str:
    return text[:_DETAIL_CHARS].replace("\n", " ")


def _error_detail(response: httpx.Response) -> str:
    """The server's ``{"error": {"code", "message"}}`` in one short line, else the raw text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _short(response.text)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return _short(f"{error.get('code', '')}: {error.get('message', '')}")
    return _short(json.dumps(body))


def check_health(http: httpx.Client, base_url: str, timeout_s: float) -> Health:
    """GET /health. Healthy only on 200 with status "healthy" and the model loaded (P6)."""
    try:
        response = http.get(f"{base_url}/health", timeout=httpx.Timeout(timeout_s))
    except httpx.HTTPError as exc:
        return Health(False, f"health check failed: {type(exc).__name__}")
    body: Any
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    status = body.get("status") if isinstance(body, dict) else None
    if response.status_code != 200:
        return Health(False, f"health answered HTTP {response.status_code} (status={status!r})")
    if not isinstance(body, dict):
        return Health(False, "health answered 200 without a JSON object")
    if status != "healthy":
        return Health(False, f"health says status={status!r}")
    if body.get("model_loaded") is not True:
        return Health(False, f"health says model_loaded={body.get('model_loaded')!r}")
    return Health(True, "healthy")


class _BudgetStop(stop_base):
    """Stop when the next wait plus one more worst-case request would eat the queue reserve."""

    def __init__(self, budget: TimeBudget, attempt_s: float) -> None:
        self._budget = budget
        self._attempt_s = attempt_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        return not self._budget.fits(retry_state.upcoming_sleep + self._attempt_s)


def _post_once(
    http: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str], timeout: Timeouts
) -> httpx.Response:
    response = http.post(url, json=body, headers=headers, timeout=timeout.as_httpx())
    if response.status_code in RETRY_STATUSES:
        raise RetryableStatusError(response.status_code, _error_detail(response))
    return response


def forward(
    http: httpx.Client,
    base_url: str,
    api_key: str,
    body: dict[str, Any],
    timeout: Timeouts,
    budget: TimeBudget,
    sleep: Callable[[float], None],
) -> ForwardResult:
    """POST /transcribe-s3 with backoff 1, 2, 4 s on transport errors and 429/502/503/504 only.

    Returns ``ok=False`` when retries or time ran out (the caller queues the chunk); raises
    ServerRejectedError for any other non-2xx answer (never retried).
    """
    url = f"{base_url}/transcribe-s3"
    headers = {"Authorization": f"Bearer {api_key}"}

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.warning(
            "forward attempt %d failed (%s); retrying in %.0f s",
            state.attempt_number,
            f"{type(exc).__name__}: {exc}" if exc else "no outcome",
            state.upcoming_sleep,
        )

    retrying = Retrying(
        stop=stop_after_attempt(MAX_ATTEMPTS) | _BudgetStop(budget, timeout.worst_case_s),
        wait=wait_exponential(multiplier=1, min=BACKOFF_MIN_S, max=BACKOFF_MAX_S),
        retry=retry_if_exception_type((httpx.TransportError, RetryableStatusError)),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=False,
    )
    try:
        response = retrying(_post_once, http, url, body, headers, timeout)
    except RetryError as exc:
        last = exc.last_attempt
        error = last.exception()
        status = error.status_code if isinstance(error, RetryableStatusError) else None
        detail = f"{type(error).__name__}: {error}" if error else "no outcome"
        return ForwardResult(False, last.attempt_number, status, _short(detail))
    attempts = int(retrying.statistics.get("attempt_number", 1))
    if response.is_success:
        return ForwardResult(True, attempts, response.status_code, "transcribed")
    raise ServerRejectedError(response.status_code, _error_detail(response))
