"""The URL input's fetch (P17, P18) against hostile peers: a server that trickles its headers,
a gzip bomb, an IPv6 literal, a host name that is not ASCII. The resolver is always faked and
the only real connections go to a loopback server, whatever address the code dialled."""

from __future__ import annotations

import gzip
import time
import tracemalloc

import httpx
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.errors import ForbiddenInputError, UpstreamError
from server.runtime import Runtime
from server.url_fetch import fetch_url
from tests.server.conftest import AUTH, BlockingTranscriber, make_settings
from tests.support.slow_http import LoopbackBackend, TrickleServer

PUBLIC = "93.184.215.14"


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC]


def test_the_deadline_covers_slowly_trickled_headers() -> None:
    # One header line every 0.2 s for 6 s: every read is quick, only an overall deadline stops it.
    with TrickleServer(interval_s=0.2, duration_s=6.0) as server:
        backend = LoopbackBackend(server.port)
        started = time.monotonic()
        with pytest.raises(UpstreamError, match="took over 1 s"):
            fetch_url(
                "https://cdn.example/a.mp3",
                max_bytes=1000,
                timeout_s=1.0,
                resolver=public_resolver,
                network_backend=backend,
            )
        elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"a 1 s fetch took {elapsed:.1f} s"
    assert backend.dialled == [(PUBLIC, 443)]  # the checked address, never the name
    assert 1 <= server.header_lines_sent < 15
    (request,) = server.requests
    assert b"\r\nHost: cdn.example\r\n" in request


def test_a_slow_dns_lookup_counts_against_the_deadline() -> None:
    def slow_resolver(host: str, port: int) -> list[str]:
        time.sleep(0.4)
        return [PUBLIC]

    backend = LoopbackBackend(port=9)  # never dialled: the deadline is gone before the connect
    with pytest.raises(UpstreamError, match=r"took over 0\.3 s"):
        fetch_url(
            "https://cdn.example/a.mp3",
            max_bytes=1000,
            timeout_s=0.3,
            resolver=slow_resolver,
            network_backend=backend,
        )
    assert backend.dialled == []


def test_a_fast_answer_through_the_deadline_transport_is_read() -> None:
    with TrickleServer(interval_s=0.01, duration_s=0.05) as server:
        body = fetch_url(
            "https://cdn.example/a.mp3",
            max_bytes=1000,
            timeout_s=5.0,
            resolver=public_resolver,
            network_backend=LoopbackBackend(server.port),
        )
    assert body == b"ok"
    assert b"\r\nAccept-Encoding: identity\r\n" in server.requests[0]


def test_compressed_bodies_are_refused_before_they_are_inflated() -> None:
    # 16 MB of zeros is ~16 KB gzipped: under a 1 MB cap on the wire, far over it decoded.
    bomb = gzip.compress(bytes(16 * 1024 * 1024))
    assert len(bomb) < 1024 * 1024
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        # A stream, as from the network (content=... would be inflated right here, in the mock).
        return httpx.Response(
            200, stream=httpx.ByteStream(bomb), headers={"Content-Encoding": "gzip"}
        )

    tracemalloc.start()
    try:
        with pytest.raises(UpstreamError, match="Content-Encoding"):
            fetch_url(
                "https://cdn.example/a.mp3",
                max_bytes=1024 * 1024,
                timeout_s=5,
                resolver=public_resolver,
                transport=httpx.MockTransport(handle),
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB: the body was inflated"
    assert seen[0].headers["accept-encoding"] == "identity"


def test_an_identity_content_encoding_is_accepted() -> None:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, content=b"audio", headers={"Content-Encoding": "identity"})
    )
    body = fetch_url(
        "https://cdn.example/a.mp3",
        max_bytes=100,
        timeout_s=5,
        resolver=public_resolver,
        transport=transport,
    )
    assert body == b"audio"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://[2606:4700::1]:8443/a.mp3", "[2606:4700::1]:8443"),
        ("https://[2606:4700::1]/a.mp3", "[2606:4700::1]"),
    ],
)
def test_an_ipv6_literal_host_header_has_brackets(url: str, host: str) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"a")

    fetch_url(
        url,
        max_bytes=100,
        timeout_s=5,
        resolver=public_resolver,
        transport=httpx.MockTransport(handle),
    )
    assert seen[0].headers["host"] == host
    assert seen[0].url.host == "2606:4700::1"
    assert seen[0].extensions["sni_hostname"] == "2606:4700::1"


@pytest.mark.parametrize(
    "url",
    [
        "https://\uff11\uff12\uff17.0.0.1/a.mp3",
        "https://\uff45xample.com/a.mp3",
        "https://bücher.example/a.mp3",
    ],
)
def test_non_ascii_host_names_are_refused_not_crashed_on(url: str) -> None:
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return [PUBLIC]

    with pytest.raises(ForbiddenInputError, match="non-ascii-host"):
        fetch_url(url, max_bytes=100, timeout_s=5, resolver=resolver)
    assert asked == []


def test_transcribe_url_answers_400_for_a_non_ascii_host() -> None:
    fake = BlockingTranscriber()
    fake.release.set()
    runtime = Runtime(make_settings(), engine_loader=lambda settings: fake)
    runtime.resolver = public_resolver
    with TestClient(create_app(runtime)) as client:
        assert runtime.wait_loaded(10)
        response = client.post(
            "/transcribe-url", headers=AUTH, json={"url": "https://\uff11\uff12\uff17.0.0.1/a.mp3"}
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "input_not_allowed"
    assert fake.batches == []
