"""P17 rule by rule through the server's own endpoints (docs/design.md P17).

The contract-level matrices (every address rule, every URL-shape rule) are in
tests/transcript_contracts/test_url_safety.py; here each rule is shown to hold where a client
meets it — /transcribe-url and /transcribe-s3 — and every refusal names its rule. The engine
is a fake at the runtime's seam, the resolver is faked and no connection leaves the process.
"""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.runtime import Runtime
from tests.server.conftest import AUTH, BUCKET, BlockingTranscriber, make_settings

PUBLIC = "93.184.215.14"
MAX_DOWNLOAD = 64 * 1024
FETCH_TIMEOUT_S = 1.0


def _wav(seconds: float = 0.5) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\x00\x00" * int(16_000 * seconds))
    return out.getvalue()


class Server:
    """The app with a fake engine, a scripted resolver and transport, and an S3 recorder."""

    def __init__(self, client: TestClient, runtime: Runtime, engine: BlockingTranscriber) -> None:
        self.client = client
        self.runtime = runtime
        self.engine = engine
        self.resolved: list[str] = []
        self.addresses: list[str] = [PUBLIC]
        self.requests: list[httpx.Request] = []
        self.answer: httpx.Response = httpx.Response(200, content=_wav())
        runtime.resolver = self._resolve
        runtime.url_transport = httpx.MockTransport(self._handle)

    def _resolve(self, host: str, port: int) -> list[str]:
        self.resolved.append(host)
        return list(self.addresses)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer

    def transcribe_url(self, url: str) -> Any:
        return self.client.post("/transcribe-url", headers=AUTH, json={"url": url})


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[TestClient, Runtime, BlockingTranscriber]]:
    engine = BlockingTranscriber()
    engine.release.set()
    settings = make_settings(max_download_bytes=MAX_DOWNLOAD, fetch_timeout_s=FETCH_TIMEOUT_S)
    runtime = Runtime(settings, engine_loader=lambda _settings: engine)
    with TestClient(create_app(runtime)) as client:
        assert runtime.wait_loaded(10)
        yield client, runtime, engine


@pytest.fixture
def server(app: tuple[TestClient, Runtime, BlockingTranscriber]) -> Server:
    client, runtime, engine = app
    engine.batches.clear()
    return Server(client, runtime, engine)


def _refused(response: Any, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert fragment in message, message


@pytest.mark.parametrize(
    ("url", "addresses", "rule"),
    [
        ("http://cdn.example/a.mp3", [PUBLIC], "scheme"),
        ("https://user@cdn.example/a.mp3", [PUBLIC], "userinfo"),
        ("https://user:pw@cdn.example/a.mp3", [PUBLIC], "userinfo"),
        ("https://cdn.example/a.mp3", ["127.0.0.1"], "loopback"),
        ("https://cdn.example/a.mp3", ["10.0.0.5"], "private"),
        ("https://cdn.example/a.mp3", ["169.254.169.254"], "link-local"),
        ("https://cdn.example/a.mp3", ["100.64.0.1"], "shared"),
        ("https://cdn.example/a.mp3", ["::1"], "loopback"),
        ("https://cdn.example/a.mp3", ["fd00::1"], "unique-local"),
        ("https://cdn.example/a.mp3", ["::ffff:169.254.169.254"], "ipv4-mapped:link-local"),
        ("https://cdn.example/a.mp3", ["64:ff9b::a9fe:a9fe"], "nat64:link-local"),
        # every address must pass, not only the first: DNS may hand out the other one
        ("https://cdn.example/a.mp3", [PUBLIC, "10.1.2.3"], "private"),
        ("https://cdn.example/a.mp3", [], "unresolvable"),
        ("https://[::ffff:127.0.0.1]/a.mp3", [PUBLIC], "ipv4-mapped:loopback"),
        ("https://2130706433/a.mp3", [PUBLIC], "numeric-host"),
    ],
)
def test_each_url_rule_refuses_by_name(
    server: Server, url: str, addresses: list[str], rule: str
) -> None:
    server.addresses = addresses
    response = server.transcribe_url(url)
    _refused(response, 400, f"(rule {rule}, P17)")
    assert response.json()["error"]["code"] == "input_not_allowed"
    assert server.requests == []  # refused before any connection
    assert server.engine.batches == []


def test_connects_to_the_checked_address_even_if_dns_changes_its_answer(server: Server) -> None:
    """DNS rebinding: the name is resolved once; the connection goes to the address that
    passed the check, with the name only in Host and SNI."""
    answers = iter([[PUBLIC], ["127.0.0.1"]])

    def rebinding(host: str, port: int) -> list[str]:
        server.resolved.append(host)
        return next(answers)

    server.runtime.resolver = rebinding
    response = server.transcribe_url("https://cdn.example/talk.wav")
    assert response.status_code == 200, response.text
    assert server.resolved == ["cdn.example"]
    [request] = server.requests
    assert request.url.host == PUBLIC
    assert request.headers["host"] == "cdn.example"
    assert request.extensions["sni_hostname"] == "cdn.example"


def test_no_redirects_and_the_target_is_never_fetched(server: Server) -> None:
    server.answer = httpx.Response(302, headers={"location": "https://169.254.169.254/"})
    response = server.transcribe_url("https://cdn.example/talk.wav")
    _refused(response, 400, "redirects are not followed")
    assert len(server.requests) == 1
    assert server.engine.batches == []


def test_a_declared_size_over_the_cap_is_refused_unread(server: Server) -> None:
    server.answer = httpx.Response(
        200, headers={"content-length": str(MAX_DOWNLOAD + 1)}, content=b""
    )
    _refused(server.transcribe_url("https://cdn.example/big.wav"), 413, "byte limit")


def test_an_undeclared_size_over_the_cap_is_cut_off(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"\x00" * (MAX_DOWNLOAD // 4)

    server.answer = httpx.Response(200, content=chunks())  # chunked: no Content-Length
    _refused(server.transcribe_url("https://cdn.example/big.wav"), 413, "MAX_DOWNLOAD_BYTES")
    assert server.engine.batches == []


def test_the_time_limit_covers_the_whole_download(server: Server) -> None:
    def trickle() -> Iterator[bytes]:
        for _ in range(20):
            time.sleep(FETCH_TIMEOUT_S / 5)
            yield b"\x00" * 16

    server.answer = httpx.Response(200, content=trickle())
    started = time.monotonic()
    response = server.transcribe_url("https://cdn.example/slow.wav")
    _refused(response, 502, f"took over {FETCH_TIMEOUT_S:g} s")
    assert time.monotonic() - started < FETCH_TIMEOUT_S * 3


class _S3Recorder:
    """Any S3 call is recorded and fails the request: none may happen for a refused bucket."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(**_kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"S3 {name} called for a bucket that is not allowed")

        return call


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({"s3_input_path": "s3://other-bucket/audio/s1/chunk-0000.wav"}, "input bucket"),
        (
            {
                "s3_input_path": f"s3://{BUCKET}/audio/s1/chunk-0000.wav",
                "s3_output_path": "s3://other-bucket/transcripts/s1/chunk-0000.json",
            },
            "output bucket",
        ),
    ],
)
def test_s3_input_and_output_only_in_the_configured_buckets(
    server: Server, body: dict[str, str], refused: str
) -> None:
    recorder = _S3Recorder()
    saved = server.runtime._s3
    server.runtime._s3 = recorder  # type: ignore[assignment]
    try:
        response = server.client.post("/transcribe-s3", headers=AUTH, json=body)
    finally:
        server.runtime._s3 = saved
    _refused(response, 400, f"{refused} 'other-bucket' is not in ALLOWED_BUCKETS")
    assert recorder.calls == []
