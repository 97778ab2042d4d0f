"""Typed errors of the router. Raising one fails the invocation, so Lambda retries it and then
hands the event to the function's on-failure destination; nothing here is swallowed (except
RetryableStatusError, which the forward's backoff consumes).

RouterError
├── QueueSendError         the fallback queue send failed (P4): the event must be retried
├── ServerRejectedError    the server refused the chunk with a status that is not retried
├── RetryableStatusError   429/502/503/504 from the server: another forward attempt may work
├── ApiKeyError            the server's bearer key could not be read (SSM)
└── ServerLookupError      EC2 DescribeInstances failed while looking for the server
"""

from __future__ import annotations


class RouterError(Exception):
    """Base of every error the router raises on purpose."""


class QueueSendError(RouterError):
    """The fallback queue send failed: the invocation must fail so the event is retried (P4)."""


class ServerRejectedError(RouterError):
    """The server refused the chunk with a status that is not retried (4xx other than 429, or
    a 5xx other than 502/503/504). Fails loudly: a wrong key or a server bug, not a busy one."""

    def __init__(self, status_code: int, detail: str) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"server rejected the chunk with HTTP {status_code}: {detail}")


class RetryableStatusError(RouterError):
    """A 429/502/503/504 answer: the server is busy or its proxy is; worth another try."""

    def __init__(self, status_code: int, detail: str) -> None:
        self.status_code = status_code
        super().__init__(f"HTTP {status_code}: {detail}")


class ApiKeyError(RouterError):
    """The server's bearer key could not be read from SSM."""


class ServerLookupError(RouterError):
    """EC2 DescribeInstances failed while looking up the tagged transcription server."""
