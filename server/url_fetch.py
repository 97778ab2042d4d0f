"""SSRF-safe fetch of audio by URL (P17).

https only; no userinfo; every address the host resolves to must be globally routable (no
loopback, private, link-local such as 169.254.169.254, shared, reserved or multicast, and no
IPv4-mapped/6to4/NAT64 wrappers of those); the connection goes to the address that was checked
(TLS still verifies the host name through SNI); redirects are refused; size and time are capped.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from server.errors import ForbiddenInputError, PayloadTooLargeError, UpstreamError

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address hidden in IPv4-mapped, 6to4, Teredo or NAT64 IPv6 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def check_public_address(raw: str) -> IPAddress:
    try:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError as exc:
        raise ForbiddenInputError(f"not an IP address: {raw!r}") from exc
    inner = _unwrap(address)
    for candidate in {address, inner}:
        if not candidate.is_global or candidate.is_multicast:
            raise ForbiddenInputError(f"URL resolves to {raw}, which is not a public address (P17)")
    return address


@dataclass(frozen=True)
class CheckedUrl:
    url: str
    host: str
    port: int
    address: IPAddress

    def url_for_address(self) -> str:
        parts = urlsplit(self.url)
        ip = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = ip if self.port == 443 else f"{ip}:{self.port}"
        return urlunsplit(SplitResult("https", netloc, parts.path or "/", parts.query, ""))


def check_url(url: str, resolver: Resolver = system_resolver) -> CheckedUrl:
    if len(url) > 2048:
        raise ForbiddenInputError("URL is longer than 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise ForbiddenInputError(f"malformed URL: {exc}") from exc
    if parts.scheme != "https":
        raise ForbiddenInputError(f"only https URLs are fetched, not {parts.scheme or 'none'!r}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ForbiddenInputError("URLs with user information (user@host) are refused")
    host = parts.hostname
    if not host:
        raise ForbiddenInputError("URL has no host")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        if host.endswith(".") or not all(c.isalnum() or c in "-." for c in host):
            raise ForbiddenInputError(f"host name {host!r} is not a plain DNS name")
        try:
            addresses = resolver(host, port)
        except OSError as exc:
            raise ForbiddenInputError(f"host {host!r} does not resolve: {exc}") from exc
        if not addresses:
            raise ForbiddenInputError(f"host {host!r} does not resolve")
    # Every address must pass: DNS may hand out a private one next time.
    checked = [check_public_address(a) for a in addresses]
    return CheckedUrl(url=url, host=host, port=port, address=checked[0])


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
            headers={
                "Host": checked.host if checked.port == 443 else f"{checked.host}:{checked.port}"
            },
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
