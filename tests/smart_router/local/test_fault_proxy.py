"""The chaos run's fault proxy: passes through, or injects what its plan says."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from smart_router.local.fault_proxy import FaultPlan, FaultProxy

NONE = FaultPlan(error_rate=0, lost_response_rate=0, hang_rate=0, slow_rate=0)


class Upstream:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes, str | None]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                upstream.requests.append(
                    (self.command, self.path, body, self.headers.get("Authorization"))
                )
                payload = b'{"ok": true}'
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _answer  # noqa: N815
            do_POST = _answer  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.server.shutdown()


def _proxy(upstream: Upstream, plan: FaultPlan) -> FaultProxy:
    proxy = FaultProxy(upstream.url, plan)
    proxy.start()
    return proxy


def test_passes_requests_through_with_body_and_headers(upstream: Upstream) -> None:
    proxy = _proxy(upstream, NONE)
    try:
        response = httpx.post(
            f"{proxy.url}/transcribe-s3",
            content=b'{"s3_input_path": "s3://b/k"}',
            headers={"Authorization": "Bearer k"},
            timeout=5,
        )
    finally:
        proxy.stop()
    assert response.status_code == 201
    assert response.json() == {"ok": True}
    assert upstream.requests == [
        ("POST", "/transcribe-s3", b'{"s3_input_path": "s3://b/k"}', "Bearer k")
    ]
    assert proxy.counts["pass"] == 1


def test_injected_errors_never_reach_the_server(upstream: Upstream) -> None:
    proxy = _proxy(upstream, FaultPlan(error_rate=1.0))
    try:
        statuses = {httpx.get(f"{proxy.url}/health", timeout=5).status_code for _ in range(12)}
    finally:
        proxy.stop()
    assert statuses <= {502, 503, 504}
    assert upstream.requests == []


def test_a_lost_response_reaches_the_server_but_answers_502(upstream: Upstream) -> None:
    proxy = _proxy(upstream, FaultPlan(error_rate=0, lost_response_rate=1.0))
    try:
        response = httpx.post(f"{proxy.url}/transcribe-s3", content=b"{}", timeout=5)
    finally:
        proxy.stop()
    assert response.status_code == 502
    assert len(upstream.requests) == 1


def test_a_dead_server_is_a_502(upstream: Upstream) -> None:
    proxy = FaultProxy("http://127.0.0.1:9", NONE)
    proxy.start()
    try:
        response = httpx.get(f"{proxy.url}/health", timeout=5)
    finally:
        proxy.stop()
    assert response.status_code == 502
    assert "ConnectError" in response.text
