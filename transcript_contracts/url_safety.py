"""SSRF rules for URLs the system connects to on someone else's say-so (docs/design.md P17).

Used by the server's URL input (``server/url_fetch.py``) and by webhook callbacks
(``notifications/webhooks.py``). Pure standard library, no web framework:

- https only; no user information (``user@host``); the host is an IP literal (no IPv6 zone) or
  a plain ASCII DNS name: letters, digits and hyphens in labels of 1..63, not a number that a
  C resolver would read as IPv4 (``2130706433``, ``0x7f000001``, ``127.1``). International names
  go in their IDNA form (``xn--…``): str.isalnum() admits full-width digits, which IDNA folds
  into an IP address;
- every address the host resolves to must be global unicast after unwrapping every IPv6 form
  that embeds IPv4 (:func:`check_public_address`, rules in :data:`_V4_RULES`, :data:`_V6_RULES`
  and :data:`_EMBEDDINGS`). DNS may hand out another address next time, so all must pass;
- the caller connects to the address that was checked (:meth:`CheckedUrl.url_for_address`,
  with the host name as ``Host`` header and TLS SNI), never resolving again; redirects are
  the caller's to refuse. ``outbound_http.deadline`` bounds the whole exchange.

Every refusal is an :class:`UnsafeUrlError` whose ``rule`` names the rule that refused, e.g.
``link-local`` or ``nat64:link-local`` (an embedding, then the rule its IPv4 address broke).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

from transcript_contracts.errors import ContractError

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH: Final = 2048
_MAX_HOST_LENGTH: Final = 253
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


class UnsafeUrlError(ContractError, ValueError):
    """The URL breaks a P17 rule; ``rule`` names which (also in the message). Never a secret:
    URLs are shown."""

    def __init__(self, message: str, *, rule: str) -> None:
        self.rule = rule
        super().__init__(f"{message} (rule {rule}, P17)")


def _v4(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def _v6(cidr: str) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network(cidr)


# IANA's IPv4 special-purpose registry, first match wins (broadcast before reserved).
_V4_RULES: Final = (
    (_v4("0.0.0.0/8"), "this-network"),
    (_v4("10.0.0.0/8"), "private"),
    (_v4("100.64.0.0/10"), "shared"),
    (_v4("127.0.0.0/8"), "loopback"),
    (_v4("169.254.0.0/16"), "link-local"),
    (_v4("172.16.0.0/12"), "private"),
    (_v4("192.0.0.0/24"), "ietf-protocol"),
    (_v4("192.0.2.0/24"), "documentation"),
    (_v4("192.88.99.0/24"), "6to4-relay"),
    (_v4("192.168.0.0/16"), "private"),
    (_v4("198.18.0.0/15"), "benchmarking"),
    (_v4("198.51.100.0/24"), "documentation"),
    (_v4("203.0.113.0/24"), "documentation"),
    (_v4("224.0.0.0/4"), "multicast"),
    (_v4("255.255.255.255/32"), "broadcast"),
    (_v4("240.0.0.0/4"), "reserved"),
)

# IPv6 ranges refused outright, checked after :data:`_EMBEDDINGS`.
_V6_RULES: Final = (
    (_v6("64:ff9b:1::/48"), "nat64-local"),  # RFC 8215: the operator's own translator
    (_v6("100::/64"), "discard"),
    (_v6("2001:db8::/32"), "documentation"),
    (_v6("2001::/23"), "ietf-protocol"),
    (_v6("3fff::/20"), "documentation"),
    (_v6("5f00::/16"), "segment-routing"),
    (_v6("fc00::/7"), "unique-local"),
    (_v6("fe80::/10"), "link-local"),
    (_v6("fec0::/10"), "site-local"),
    (_v6("ff00::/8"), "multicast"),
)
_GLOBAL_UNICAST: Final = _v6("2000::/3")


def _low32(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)


def _sixtofour(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    return (ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF),)


def _teredo(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    server = ipaddress.IPv4Address((int(address) >> 64) & 0xFFFFFFFF)
    client = ipaddress.IPv4Address(~int(address) & 0xFFFFFFFF)  # stored inverted
    return (client, server)


@dataclass(frozen=True, slots=True)
class _Embedding:
    """An IPv6 range that carries IPv4 addresses: each must pass the IPv4 rules, and the range
    itself is refused unless ``allowed`` (NAT64's well-known prefix, which DNS64 hands out on
    IPv6-only networks, is the one form in real use for public hosts)."""

    network: ipaddress.IPv6Network
    name: str
    inner: Callable[[ipaddress.IPv6Address], tuple[ipaddress.IPv4Address, ...]]
    allowed: bool = False


_EMBEDDINGS: Final = (
    _Embedding(_v6("::ffff:0:0/96"), "ipv4-mapped", _low32),
    _Embedding(_v6("::ffff:0:0:0/96"), "ipv4-translated", _low32),
    _Embedding(_v6("64:ff9b::/96"), "nat64", _low32, allowed=True),
    _Embedding(_v6("2002::/16"), "6to4", _sixtofour),  # deprecated (RFC 7526)
    _Embedding(_v6("2001::/32"), "teredo", _teredo),
    # IPv4-compatible (deprecated, RFC 4291); :: and ::1 are judged before this.
    _Embedding(_v6("::/96"), "ipv4-compatible", _low32),
)


def _v4_refusal(address: ipaddress.IPv4Address) -> str | None:
    for network, rule in _V4_RULES:
        if address in network:
            return rule
    # Whatever the standard library knows that the table does not (a newer registry entry).
    return None if address.is_global else "not-global"


def _v6_refusal(address: ipaddress.IPv6Address) -> str | None:
    if int(address) == 0:
        return "unspecified"
    if int(address) == 1:
        return "loopback"
    for embedding in _EMBEDDINGS:
        if address in embedding.network:
            for inner in embedding.inner(address):
                rule = _v4_refusal(inner)
                if rule is not None:
                    return f"{embedding.name}:{rule}"
            return None if embedding.allowed else embedding.name
    for network, rule in _V6_RULES:
        if address in network:
            return rule
    if address not in _GLOBAL_UNICAST:
        return "not-global-unicast"
    return None if address.is_global else "not-global"


def refusal(address: IPAddress) -> str | None:
    """The name of the rule that refuses ``address``, None when it is global unicast."""
    if isinstance(address, ipaddress.IPv4Address):
        return _v4_refusal(address)
    return _v6_refusal(address)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def check_public_address(raw: str) -> IPAddress:
    """The address, if it is global unicast once every embedded IPv4 address is unwrapped."""
    try:
        # A resolver reports link-local IPv6 with its zone ("fe80::1%eth0"); the zone does not
        # change which rule applies.
        address = ipaddress.ip_address(raw.split("%", 1)[0])
    except ValueError as exc:
        raise UnsafeUrlError(f"not an IP address: {raw!r}", rule="not-an-address") from exc
    rule = refusal(address)
    if rule is not None:
        raise UnsafeUrlError(f"URL resolves to {raw}, which is not a public address", rule=rule)
    return address


def _bracketed(host: str) -> str:
    """A host as it is written in a URL authority or ``Host`` header (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host


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
        ip = _bracketed(str(self.address))
        default = _DEFAULT_PORTS.get(self.scheme)
        netloc = ip if self.port == default else f"{ip}:{self.port}"
        return urlunsplit(SplitResult(self.scheme, netloc, parts.path or "/", parts.query, ""))

    @property
    def host_header(self) -> str:
        """The ``Host`` header for a request sent to :meth:`url_for_address` (RFC 9110: an
        IPv6 literal keeps its brackets, a non-default port follows the host)."""
        host = _bracketed(self.host)
        return host if self.port == _DEFAULT_PORTS.get(self.scheme) else f"{host}:{self.port}"


def check_url_shape(url: str) -> SplitResult:
    """The checks that need no DNS: length, https, no userinfo, a host that is a plain ASCII
    DNS name or an IP literal. Good for validating settings and documents at load time."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrlError(f"URL is longer than {MAX_URL_LENGTH} characters", rule="too-long")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise UnsafeUrlError(f"malformed URL: {exc}", rule="malformed") from exc
    if parts.scheme != "https":
        raise UnsafeUrlError(
            f"only https URLs are fetched, not {parts.scheme or 'none'!r}", rule="scheme"
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeUrlError("URLs with user information (user@host) are refused", rule="userinfo")
    host = parts.hostname
    if not host:
        raise UnsafeUrlError("URL has no host", rule="no-host")
    _check_host(host)
    return parts


def _check_host(host: str) -> None:
    if not host.isascii():
        raise UnsafeUrlError(
            f"host name {host!r} is not ASCII; write an international name in its IDNA "
            "form (xn--...)",
            rule="non-ascii-host",
        )
    if "%" in host:
        raise UnsafeUrlError(f"IPv6 zone identifiers are refused: {host!r}", rule="zone-id")
    if _literal(host) is not None:
        return
    labels = host.split(".")
    if len(host) > _MAX_HOST_LENGTH or not all(_LABEL.fullmatch(label) for label in labels):
        raise UnsafeUrlError(f"host name {host!r} is not a plain DNS name", rule="host-syntax")
    if labels[-1].isdigit() or _inet_aton_accepts(host):
        raise UnsafeUrlError(
            f"host name {host!r} reads as a number (an IPv4 address to the resolver)",
            rule="numeric-host",
        )


def _inet_aton_accepts(host: str) -> bool:
    """Whether the C library would take ``host`` as IPv4 (hex, octal, fewer than four parts)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


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
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrlError(
                f"host {host!r} does not resolve: {exc}", rule="unresolvable"
            ) from exc
        if not addresses:
            raise UnsafeUrlError(f"host {host!r} does not resolve", rule="unresolvable")
    # Every address must pass: DNS may hand out another one next time.
    checked = [check_public_address(a) for a in addresses]
    return CheckedUrl(url=url, host=host, port=port, address=checked[0])
