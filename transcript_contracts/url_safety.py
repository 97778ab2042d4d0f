"""SSRF rules for URLs the system connects to on someone else's say-so (DESIGN.md P17).

Used by the server's URL input (``server/url_fetch.py``) and by webhook callbacks
(``notifications/webhooks.py``). Pure standard library, no web framework:

- https only; no user information (``user@host``); a plain DNS name or an IP literal;
- every address the host resolves to must be globally routable: no loopback, private,
  link-local such as 169.254.169.254, shared, reserved or multicast, and no IPv4-mapped, 6to4,
  Teredo or NAT64 wrappers of those (DNS may hand out a private one next time, so all count);
- the caller connects to the address that was checked (:meth:`CheckedUrl.url_for_address`,
  with the host name as ``Host`` header and TLS SNI), never resolving again; redirects are
  the caller's to refuse.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

from transcript_contracts.errors import ContractError

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH: Final = 2048
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


class UnsafeUrlError(ContractError, ValueError):
    """The URL breaks a P17 rule; the message says which (never a secret: URLs are shown)."""


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
    """The address, if it and any IPv4 address it wraps are globally routable unicast."""
    try:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError as exc:
        raise UnsafeUrlError(f"not an IP address: {raw!r}") from exc
    inner = _unwrap(address)
    for candidate in {address, inner}:
        if not candidate.is_global or candidate.is_multicast:
            raise UnsafeUrlError(f"URL resolves to {raw}, which is not a public address (P17)")
    return address


@dataclass(frozen=True)
class CheckedUrl:
    """A URL whose host resolved to ``address``, which passed the checks: connect there."""

    url: str
    host: str
    port: int
    address: IPAddress
    scheme: str = "https"

    def url_for_address(self) -> str:
        parts = urlsplit(self.url)
        ip = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        default = _DEFAULT_PORTS.get(self.scheme)
        netloc = ip if self.port == default else f"{ip}:{self.port}"
        return urlunsplit(SplitResult(self.scheme, netloc, parts.path or "/", parts.query, ""))

    @property
    def host_header(self) -> str:
        """The ``Host`` header for a request sent to :meth:`url_for_address`."""
        return (
            self.host
            if self.port == _DEFAULT_PORTS.get(self.scheme)
            else f"{self.host}:{self.port}"
        )


def check_url_shape(url: str) -> SplitResult:
    """The checks that need no DNS: length, https, no userinfo, a host that is a plain DNS name
    or an IP literal. Good for validating settings and documents at load time."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrlError(f"URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise UnsafeUrlError(f"malformed URL: {exc}") from exc
    if parts.scheme != "https":
        raise UnsafeUrlError(f"only https URLs are fetched, not {parts.scheme or 'none'!r}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeUrlError("URLs with user information (user@host) are refused")
    host = parts.hostname
    if not host:
        raise UnsafeUrlError("URL has no host")
    if _literal(host) is None and (
        host.endswith(".") or not all(c.isalnum() or c in "-." for c in host)
    ):
        raise UnsafeUrlError(f"host name {host!r} is not a plain DNS name")
    return parts


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, resolver: Resolver = system_resolver) -> CheckedUrl:
    """Every P17 rule: the shape, then every resolved address. Raises UnsafeUrlError."""
    parts = check_url_shape(url)
    host = parts.hostname or ""
    port = parts.port or 443
    literal = _literal(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolver(host, port)
        except OSError as exc:
            raise UnsafeUrlError(f"host {host!r} does not resolve: {exc}") from exc
        if not addresses:
            raise UnsafeUrlError(f"host {host!r} does not resolve")
    # Every address must pass: DNS may hand out a private one next time.
    checked = [check_public_address(a) for a in addresses]
    return CheckedUrl(url=url, host=host, port=port, address=checked[0])
