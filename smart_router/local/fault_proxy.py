"""A fault-injecting HTTP proxy between the router and the transcription server (chaos run).

Per request, by probability: an error status without reaching the server, a response lost
after the server did the work (the router sees 502 although the transcript was written), a
hang longer than the router's read timeout, or a slow answer. Everything else passes through.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import httpx

logger = logging.getLogger(__name__)

HOP_BY_HOP: Final = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class FaultPlan:
    error_rate: float = 0.10
    lost_response_rate: float = 0.03
    hang_rate: float = 0.02
    slow_rate: float = 0.10
    hang_s: float = 20.0
    slow_s: tuple[float, float] = (0.5, 2.0)


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        plan: FaultPlan,
        *,
        host: str = "127.0.0.1",
        rng: random.Random | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan
        self.counts: Counter[str] = Counter()
        self._rng = rng or random.Random()  # noqa: S311 - fault injection, not security
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=httpx.Timeout(300.0, connect=2.0))
        self._stopping = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                proxy.handle(self)

            def do_POST(self) -> None:
                proxy.handle(self)

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def _draw(self) -> str:
        with self._lock:
            roll = self._rng.random()
        plan = self.plan
        for fault, rate in (
            ("error", plan.error_rate),
            ("lost_response", plan.lost_response_rate),
            ("hang", plan.hang_rate),
            ("slow", plan.slow_rate),
        ):
            if roll < rate:
                return fault
            roll -= rate
        return "pass"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        fault = self._draw()
        with self._lock:
            self.counts[fault] += 1
        if fault == "error":
            self._reply(request, self._rng.choice((502, 503, 504)), b'{"detail":"injected"}')
            return
        if fault == "hang":
            self._stopping.wait(self.plan.hang_s)
            self._reply(request, 504, b'{"detail":"injected hang"}')
            return
        if fault == "slow":
            self._stopping.wait(self._rng.uniform(*self.plan.slow_s))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            upstream = self._client.request(
                request.command, self.upstream + request.path, content=body, headers=headers
            )
        except httpx.TransportError as exc:
            # The server is down (killed by the chaos run): what a load balancer answers.
            self._reply(request, 502, f'{{"detail":"upstream: {type(exc).__name__}"}}'.encode())
            return
        if fault == "lost_response":
            self._reply(request, 502, b'{"detail":"injected: response lost"}')
            return
        self._reply(
            request,
            upstream.status_code,
            upstream.content,
            upstream.headers.get("content-type", "application/json"),
            retry_after=upstream.headers.get("retry-after"),
        )

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        *,
        retry_after: str | None = None,
    ) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            if retry_after is not None:
                request.send_header("Retry-After", retry_after)
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The router gave up (read timeout) first: nothing to answer.
            logger.debug("client went away before the answer")
