"""Hostile HTTP peers on the loopback for deadline tests: a raw socket server that answers its
status line and then trickles one header line at a time, and an httpcore network backend that
sends every connection to that server whatever address the code under test dialled.

Nothing here ever connects anywhere but 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import httpcore


class TrickleServer:
    """Answers ``200 OK``, then one header line every ``interval_s`` for ``duration_s``, then
    ends the headers and sends a 2-byte body. Stops early when the client hangs up."""

    def __init__(self, *, interval_s: float = 0.2, duration_s: float = 6.0) -> None:
        self.interval_s = interval_s
        self.duration_s = duration_s
        self.requests: list[bytes] = []
        self.header_lines_sent = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> TrickleServer:
        accept = threading.Thread(target=self._accept_loop, daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            handler = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            handler.start()
            self._threads.append(handler)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    got = conn.recv(65536)
                    if not got:
                        return
                    request += got
                self.requests.append(request)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
                ends = time.monotonic() + self.duration_s
                while time.monotonic() < ends and not self._stop.is_set():
                    conn.sendall(f"X-Slow-{self.header_lines_sent}: x\r\n".encode())
                    self.header_lines_sent += 1
                    time.sleep(self.interval_s)
                conn.sendall(b"\r\nok")
            except OSError:
                return  # the client gave up and closed: what the deadline should make it do


class _PlainStream(httpcore.NetworkStream):
    """A TCP stream whose ``start_tls`` is a no-op, so an https request is spoken in clear to
    the loopback test server (certificates are not what these tests are about)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return self

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class LoopbackBackend(httpcore.NetworkBackend):
    """Connects every ``connect_tcp`` to ``127.0.0.1:port``; records what was dialled."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dialled: list[tuple[str, int]] = []
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self.dialled.append((host, port))
        return _PlainStream(self._inner.connect_tcp("127.0.0.1", self.port, timeout=timeout))

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
