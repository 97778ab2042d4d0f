"""P16 auth and P17 URL safety: pure checks, no model needed."""

from __future__ import annotations

import httpx
import pytest

from server.auth import BearerAuth
from server.errors import (
    ForbiddenInputError,
    PayloadTooLargeError,
    ServerKeyError,
    UnauthorizedError,
)
from server.url_fetch import check_public_address, check_url, fetch_url

PUBLIC = "93.184.215.14"


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.mp3",  # plain http
        "file:///etc/passwd",
        "ftp://example.com/a.mp3",
        "gopher://127.0.0.1:6379/_INFO",
        "https://127.0.0.1/a.mp3",  # loopback
        "https://localhost/a.mp3",  # loopback by name (resolves locally)
        "https://10.0.0.5/a.mp3",  # private
        "https://172.16.3.4/a.mp3",
        "https://192.168.1.1/a.mp3",
        "https://169.254.169.254/latest/meta-data/",  # link-local: instance metadata
        "https://100.64.0.1/a.mp3",  # shared address space
        "https://0.0.0.0/a.mp3",
        "https://[::1]/a.mp3",  # IPv6 loopback
        "https://[fe80::1]/a.mp3",  # IPv6 link-local
        "https://[fd00::1]/a.mp3",  # IPv6 unique local
        "https://[::ffff:127.0.0.1]/a.mp3",  # IPv4-mapped loopback
        "https://[::ffff:169.254.169.254]/a.mp3",  # IPv4-mapped metadata
        "https://[64:ff9b::a9fe:a9fe]/a.mp3",  # NAT64 of 169.254.169.254
        "https://[2002:7f00:1::]/a.mp3",  # 6to4 of 127.0.0.1
        "https://2130706433/a.mp3",  # decimal 127.0.0.1
        "https://0x7f000001/a.mp3",  # hex 127.0.0.1
        "https://0177.0.0.1/a.mp3",  # octal
        "https://user:pass@example.com/a.mp3",  # userinfo
        "https://example.com@127.0.0.1/a.mp3",  # userinfo trick
        "https://224.0.0.1/a.mp3",  # multicast
        "https://",
    ],
)
def test_ssrf_matrix_refuses(url: str) -> None:
    def resolver(host: str, port: int) -> list[str]:
        # A real resolver maps these names to the loopback; the check must refuse them.
        return {"localhost": ["127.0.0.1"]}.get(host, ["127.0.0.1"])

    with pytest.raises(ForbiddenInputError):
        check_url(url, resolver)


def test_every_resolved_address_must_be_public() -> None:
    with pytest.raises(ForbiddenInputError, match="not a public address"):
        check_url("https://rebind.example/a.mp3", lambda h, p: [PUBLIC, "10.1.2.3"])
    checked = check_url("https://cdn.example/a.mp3?x=1", public_resolver)
    assert checked.url_for_address() == f"https://{PUBLIC}/a.mp3?x=1"
    assert check_public_address("2606:4700::1111").version == 6


def test_fetch_connects_to_the_checked_address_with_host_and_sni() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"audio-bytes")

    body = fetch_url(
        "https://cdn.example/a.mp3",
        max_bytes=100,
        timeout_s=5,
        resolver=public_resolver,
        transport=httpx.MockTransport(handle),
    )
    assert body == b"audio-bytes"
    assert seen[0].url.host == PUBLIC
    assert seen[0].headers["host"] == "cdn.example"
    assert seen[0].extensions["sni_hostname"] == "cdn.example"


def test_fetch_refuses_redirects_and_caps_size() -> None:
    redirect = httpx.MockTransport(
        lambda r: httpx.Response(302, headers={"location": "https://169.254.169.254/"})
    )
    with pytest.raises(ForbiddenInputError, match="redirects"):
        fetch_url(
            "https://cdn.example/a",
            max_bytes=10,
            timeout_s=5,
            resolver=public_resolver,
            transport=redirect,
        )
    big = httpx.MockTransport(lambda r: httpx.Response(200, content=b"x" * 101))
    with pytest.raises(PayloadTooLargeError):
        fetch_url(
            "https://cdn.example/a",
            max_bytes=100,
            timeout_s=5,
            resolver=public_resolver,
            transport=big,
        )


def test_bearer_auth() -> None:
    auth = BearerAuth("k3y")
    auth.check("Bearer k3y")
    auth.check("bearer k3y")
    for bad in (None, "", "k3y", "Basic k3y", "Bearer", "Bearer wrong", "Bearer k3y2"):
        with pytest.raises(UnauthorizedError) as info:
            auth.check(bad)
        assert info.value.headers == {"WWW-Authenticate": "Bearer"}
    with pytest.raises(ServerKeyError, match="empty"):
        BearerAuth("")
