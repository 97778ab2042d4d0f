"""One wall-clock deadline for a whole HTTP exchange with an untrusted peer (P17, P18).

httpx's timeouts bound each socket operation, not the exchange: a peer that sends one header
line a second never trips a 3 s read timeout and holds the caller (a thread that decoding and
S3 calls share) for as long as it likes. :class:`DeadlineTransport` gives every connect, TLS
handshake, write and read of the exchange at most the time left before the deadline, and none
once it has passed (httpx then raises its usual ``ConnectTimeout``/``ReadTimeout``/
``WriteTimeout``). No watchdog thread is needed: nothing blocks past the deadline, because
nothing blocks without a timeout no longer than what is left (CPython's TLS handshake keeps one
deadline for its whole loop).

The one module of this package that needs httpx, imported only by code that ships it (the
server's URL input, the notifier's webhooks); ``transcript_contracts`` itself never imports it.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

import httpcore
import httpx

# Writes go out in slices so that a peer that reads slowly meets the deadline between them.
_WRITE_SLICE: Final = 64 * 1024


class Deadline:
    """``seconds`` from now on ``clock``; :meth:`bound` clamps one operation's timeout to it."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._ends = clock() + seconds

    def remaining(self) -> float:
        return self._ends - self._clock()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def bound(self, timeout: float | None, error: type[httpcore.TimeoutException]) -> float:
        """The timeout for the next blocking operation; ``error`` once nothing is left."""
        left = self.remaining()
        if left <= 0:
            raise error(f"the exchange's {self.seconds:g} s deadline has passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        for start in range(0, len(view), _WRITE_SLICE):
            piece = bytes(view[start : start + _WRITE_SLICE])
            self._inner.write(piece, self._deadline.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = self._deadline.bound(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, bounded), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, deadline: Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host,
            port,
            timeout=self._deadline.bound(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(
            path,
            timeout=self._deadline.bound(timeout, httpcore.ConnectTimeout),
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(min(seconds, max(self._deadline.remaining(), 0.0)))


class DeadlineTransport(httpx.HTTPTransport):
    """An httpx transport for one exchange under ``deadline``: no proxies, TLS verified with
    ``ssl_context`` (default: httpx's, certifi). ``network_backend``: where sockets come from
    (tests: a backend that dials a loopback server)."""

    def __init__(
        self,
        deadline: Deadline,
        *,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        context = ssl_context if ssl_context is not None else new_ssl_context()
        super().__init__(verify=context, trust_env=False)
        # httpx has no public way to give its pool a network backend: replace the pool it has
        # just built (no connection opened yet) by one with the same TLS settings whose sockets
        # obey the deadline.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            network_backend=_DeadlineBackend(network_backend or httpcore.SyncBackend(), deadline),
        )


def new_ssl_context() -> ssl.SSLContext:
    """httpx's default verification context (certifi), ignoring SSL_* environment variables.
    Loading the CA bundle takes milliseconds: callers that make many exchanges keep one."""
    return httpx.create_ssl_context(trust_env=False)
