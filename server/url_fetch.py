"""SSRF-safe fetch of audio by URL (docs/design.md P17, P18).

https only; no userinfo; an ASCII host; every address the host resolves to must be global
unicast, also once any IPv4 address embedded in an IPv6 one is unwrapped (rules and their names:
``transcript_contracts.url_safety``, shared with webhook callbacks); the connection goes to the
address that was checked (TLS still verifies the host name through SNI); redirects are refused.

Caps: ``timeout_s`` is one deadline for the whole exchange, connect, TLS, request, answer
headers and body together (``outbound_http.deadline``: a peer trickling its headers
cannot hold the thread longer); ``max_bytes`` counts the bytes as they arrive, and only
``identity`` bodies are taken (``Accept-Encoding: identity`` is sent, any other
``Content-Encoding`` is refused unread: 65 KB of gzip can inflate to 64 MB in one read).
"""

from __future__ import annotations

import httpcore
import httpx

from outbound_http.deadline import Deadline, DeadlineTransport
from server.errors import ForbiddenInputError, PayloadTooLargeError, UpstreamError
from transcript_contracts import url_safety
from transcript_contracts.url_safety import (
    CheckedUrl,
    IPAddress,
    Resolver,
    UnsafeUrlError,
    system_resolver,
)

__all__ = [
    "CheckedUrl",
    "IPAddress",
    "Resolver",
    "check_public_address",
    "check_url",
    "fetch_url",
    "system_resolver",
]


def check_public_address(raw: str) -> IPAddress:
    """:func:`transcript_contracts.url_safety.check_public_address` as an API error."""
    try:
        return url_safety.check_public_address(raw)
    except UnsafeUrlError as exc:
        raise ForbiddenInputError(str(exc)) from exc


def check_url(url: str, resolver: Resolver = system_resolver) -> CheckedUrl:
    """:func:`transcript_contracts.url_safety.check_url` as an API error."""
    try:
        return url_safety.check_url(url, resolver)
    except UnsafeUrlError as exc:
        raise ForbiddenInputError(str(exc)) from exc


def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout_s: float,
    resolver: Resolver = system_resolver,
    transport: httpx.BaseTransport | None = None,
    network_backend: httpcore.NetworkBackend | None = None,
) -> bytes:
    """Fetch a public https URL into memory under the byte cap and one overall deadline.

    ``transport``: replaces the deadline transport altogether (tests' mock answers; then only
    the body loop watches the clock); ``network_backend``: where the deadline transport's
    sockets come from (tests: a loopback server).
    """
    # Started before the DNS lookup so that its time counts too; getaddrinfo itself cannot be
    # interrupted (the system resolver's own timeouts bound it), the exchange after it can.
    deadline = Deadline(timeout_s)
    checked = check_url(url, resolver)
    if transport is None:
        transport = DeadlineTransport(deadline, network_backend=network_backend)
    # Per operation; the deadline transport clamps each to what is left of timeout_s.
    timeout = httpx.Timeout(timeout_s)
    with httpx.Client(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        request = client.build_request(
            "GET",
            checked.url_for_address(),
            headers={"Host": checked.host_header, "Accept-Encoding": "identity"},
            extensions={"sni_hostname": checked.host},
        )
        try:
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _failed(exc, deadline) from exc
        try:
            _check_answer(response, max_bytes)
            return _read_capped(response, max_bytes, deadline)
        except httpx.HTTPError as exc:
            raise _failed(exc, deadline) from exc
        finally:
            response.close()


def _failed(exc: httpx.HTTPError, deadline: Deadline) -> UpstreamError:
    if deadline.expired:
        return UpstreamError(f"fetching the URL took over {deadline.seconds:g} s")
    return UpstreamError(f"fetching the URL failed: {type(exc).__name__}")


def _check_answer(response: httpx.Response, max_bytes: int) -> None:
    if response.is_redirect:
        raise ForbiddenInputError(
            f"the URL redirects ({response.status_code}); redirects are not followed"
        )
    if response.status_code != 200:
        raise UpstreamError(f"the URL answered {response.status_code}")
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise UpstreamError(
            f"the URL answered Content-Encoding {encoding[:40]!r}; only identity bodies are "
            "taken (a compressed body can inflate far past MAX_DOWNLOAD_BYTES)"
        )
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(
            f"the URL's content is {declared} bytes, over the {max_bytes}-byte limit"
        )


def _read_capped(response: httpx.Response, max_bytes: int, deadline: Deadline) -> bytes:
    body = bytearray()
    # httpx decodes by Content-Encoding only, checked above to be identity: these are the bytes
    # as sent (compressed bytes sent without saying so stay compressed; the decoder refuses).
    for part in response.iter_bytes():
        body.extend(part)
        if len(body) > max_bytes:
            raise PayloadTooLargeError(
                f"the URL's content is over the {max_bytes}-byte limit (MAX_DOWNLOAD_BYTES)"
            )
        if deadline.expired:
            raise UpstreamError(f"fetching the URL took over {deadline.seconds:g} s")
    return bytes(body)
