"""SSRF-safe fetch of audio by URL (P17).

https only; no userinfo; every address the host resolves to must be globally routable (no
loopback, private, link-local such as 169.254.169.254, shared, reserved or multicast, and no
IPv4-mapped/6to4/NAT64 wrappers of those); the connection goes to the address that was checked
(TLS still verifies the host name through SNI); redirects are refused; size and time are capped.
The address rules live in ``transcript_contracts.url_safety`` (shared with webhook callbacks).
"""

from __future__ import annotations

import time

import httpx

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
) -> bytes:
    """Fetch a public https URL into memory under the byte and time caps."""
    checked = check_url(url, resolver)
    deadline = time.monotonic() + timeout_s
    timeout = httpx.Timeout(connect=min(5.0, timeout_s), read=timeout_s, write=10.0, pool=5.0)
    with httpx.Client(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        request = client.build_request(
            "GET",
            checked.url_for_address(),
            headers={"Host": checked.host_header},
            extensions={"sni_hostname": checked.host},
        )
        try:
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"fetching the URL failed: {type(exc).__name__}") from exc
        try:
            if response.is_redirect:
                raise ForbiddenInputError(
                    f"the URL redirects ({response.status_code}); redirects are not followed"
                )
            if response.status_code != 200:
                raise UpstreamError(f"the URL answered {response.status_code}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise PayloadTooLargeError(
                    f"the URL's content is {declared} bytes, over the {max_bytes}-byte limit"
                )
            body = bytearray()
            for part in response.iter_bytes():
                body.extend(part)
                if len(body) > max_bytes:
                    raise PayloadTooLargeError(
                        f"the URL's content is over the {max_bytes}-byte limit (MAX_DOWNLOAD_BYTES)"
                    )
                if time.monotonic() > deadline:
                    raise UpstreamError(f"fetching the URL took over {timeout_s:.0f} s")
        except httpx.HTTPError as exc:
            raise UpstreamError(f"fetching the URL failed: {type(exc).__name__}") from exc
        finally:
            response.close()
    return bytes(body)
