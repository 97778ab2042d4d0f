"""P17 by rule: every refusal names the rule that refused, so each row proves that rule (not a
neighbouring one) caught the address. The resolver is always faked: nothing is looked up."""

from __future__ import annotations

import pytest

from transcript_contracts.url_safety import (
    UnsafeUrlError,
    check_public_address,
    check_url,
    check_url_shape,
)

PUBLIC = "93.184.215.14"


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC]


def refused_by(address: str) -> str:
    with pytest.raises(UnsafeUrlError) as info:
        check_public_address(address)
    assert info.value.rule in str(info.value)  # the message names the rule, too
    return info.value.rule


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("0.0.0.0", "this-network"),  # noqa: S104 - an address to judge, not to bind
        ("0.1.2.3", "this-network"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("169.254.169.254", "link-local"),
        ("192.0.0.8", "ietf-protocol"),
        ("192.0.2.1", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("192.88.99.1", "6to4-relay"),
        ("198.18.0.1", "benchmarking"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
    ],
)
def test_ipv4_rules(address: str, rule: str) -> None:
    assert refused_by(address) == rule


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fec0::1", "site-local"),
        ("fd00::1", "unique-local"),
        ("fc00::1", "unique-local"),
        ("ff02::1", "multicast"),
        ("100::1", "discard"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("2001:20::1", "ietf-protocol"),
        ("5f00::1", "segment-routing"),
        ("4000::1", "not-global-unicast"),
        ("1::1", "not-global-unicast"),
    ],
)
def test_ipv6_rules(address: str, rule: str) -> None:
    assert refused_by(address) == rule


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        # IPv4-compatible (::/96, deprecated): the kernel may still route it as IPv4.
        ("::a9fe:a9fe", "ipv4-compatible:link-local"),
        ("::127.0.0.1", "ipv4-compatible:loopback"),
        ("::10.1.2.3", "ipv4-compatible:private"),
        ("::5db8:d70e", "ipv4-compatible"),
        # IPv4-mapped (::ffff:0:0/96): a dual-stack socket connects to the IPv4 address.
        ("::ffff:127.0.0.1", "ipv4-mapped:loopback"),
        ("::ffff:169.254.169.254", "ipv4-mapped:link-local"),
        ("::ffff:93.184.215.14", "ipv4-mapped"),
        # IPv4-translated (::ffff:0:0:0/96, SIIT).
        ("::ffff:0:7f00:1", "ipv4-translated:loopback"),
        ("::ffff:0:5db8:d70e", "ipv4-translated"),
        # NAT64, well-known prefix: allowed only around a public IPv4 address (DNS64 hands
        # these out on IPv6-only networks), see test_nat64_of_a_public_address_is_allowed.
        ("64:ff9b::a9fe:a9fe", "nat64:link-local"),
        ("64:ff9b::127.0.0.1", "nat64:loopback"),
        ("64:ff9b::10.0.0.1", "nat64:private"),
        # NAT64, local-use prefix (RFC 8215): the operator's own translator, never public.
        ("64:ff9b:1::a9fe:a9fe", "nat64-local"),
        ("64:ff9b:1:ffff::5db8:d70e", "nat64-local"),
        # 6to4 (2002::/16, deprecated): the IPv4 address is bits 16..48.
        ("2002:7f00:1::", "6to4:loopback"),
        ("2002:a9fe:a9fe::1", "6to4:link-local"),
        ("2002:5db8:d70e::1", "6to4"),
        # Teredo (2001::/32): server in bits 32..64, client obfuscated in the last 32 bits.
        ("2001:0:5db8:d70e:0:0:80ff:fffe", "teredo:loopback"),  # client 127.0.0.1
        ("2001:0:a00:5:0:0:a247:28f1", "teredo:private"),  # server 10.0.0.5
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo:documentation"),  # RFC 4380 example
        ("2001:0:5db8:d70e::a247:28f1", "teredo"),  # both public: Teredo itself is refused
    ],
)
def test_embedded_ipv4_is_unwrapped_and_judged(address: str, rule: str) -> None:
    assert refused_by(address) == rule


@pytest.mark.parametrize(
    "address", [PUBLIC, "1.1.1.1", "2606:4700::1111", "2a00:1450:4001:80b::200e"]
)
def test_global_unicast_is_allowed(address: str) -> None:
    assert str(check_public_address(address)) == address


def test_nat64_of_a_public_address_is_allowed() -> None:
    assert str(check_public_address("64:ff9b::5db8:d70e")) == "64:ff9b::5db8:d70e"


def test_not_an_address() -> None:
    assert refused_by("example.com") == "not-an-address"


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://" + "a" * 2050 + ".example/", "too-long"),
        ("https://[::1/", "malformed"),
        ("https://example.com:\uff18\uff14\uff14\uff13/", "malformed"),
        ("https://example.com:99999/", "malformed"),
        ("http://example.com/a.mp3", "scheme"),
        ("ftp://example.com/a.mp3", "scheme"),
        ("https://user:pass@example.com/a.mp3", "userinfo"),
        ("https://example.com@127.0.0.1/a.mp3", "userinfo"),
        ("https://", "no-host"),
        ("https:///a.mp3", "no-host"),
        # Full-width digits and letters pass str.isalnum(); IDNA would fold them to ASCII.
        ("https://\uff11\uff12\uff17.0.0.1/a.mp3", "non-ascii-host"),
        ("https://\uff45xample.com/a.mp3", "non-ascii-host"),
        ("https://exa\u3002mple.com/a.mp3", "non-ascii-host"),  # ideographic full stop
        ("https://bücher.example/a.mp3", "non-ascii-host"),
        ("https://exa_mple.com/a.mp3", "host-syntax"),
        ("https://-a.example/a.mp3", "host-syntax"),
        ("https://a-.example/a.mp3", "host-syntax"),
        ("https://a..example/a.mp3", "host-syntax"),
        ("https://example.com./a.mp3", "host-syntax"),
        ("https://" + "a" * 64 + ".example/a.mp3", "host-syntax"),
        # Numbers the C resolver would read as IPv4 (inet_aton's legacy forms).
        ("https://2130706433/a.mp3", "numeric-host"),
        ("https://0x7f000001/a.mp3", "numeric-host"),
        ("https://0177.0.0.1/a.mp3", "numeric-host"),
        ("https://127.1/a.mp3", "numeric-host"),
        ("https://1.2.3.4.5/a.mp3", "numeric-host"),  # no top-level domain is all digits
        ("https://10.0.0.5.example/a.mp3", None),  # digits in the labels before: a fine name
        ("https://[2606:4700::1%25eth0]/a.mp3", "zone-id"),
    ],
)
def test_shape_rules(url: str, rule: str | None) -> None:
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return [PUBLIC]

    if rule is None:
        check_url(url, resolver)
        return
    with pytest.raises(UnsafeUrlError) as info:
        check_url(url, resolver)
    assert info.value.rule == rule
    assert asked == []  # refused before any DNS lookup


def test_shape_check_alone_needs_no_dns() -> None:
    assert check_url_shape("https://hooks.example.com/t").hostname == "hooks.example.com"
    with pytest.raises(UnsafeUrlError) as info:
        check_url_shape("https://\uff45xample.com/")
    assert info.value.rule == "non-ascii-host"
    assert "xn--" in str(info.value)  # says how to write an international name


def test_punycode_names_are_plain_dns_names() -> None:
    checked = check_url("https://xn--bcher-kva.example/a.mp3", public_resolver)
    assert (checked.host, checked.host_header) == ("xn--bcher-kva.example", "xn--bcher-kva.example")


@pytest.mark.parametrize(
    ("resolved", "rule"),
    [
        ([PUBLIC, "10.1.2.3"], "private"),  # every address counts: DNS may rebind
        (["64:ff9b::a9fe:a9fe"], "nat64:link-local"),
        (["fe80::1%eth0"], "link-local"),
        ([], "unresolvable"),
        (["not an address"], "not-an-address"),
    ],
)
def test_every_resolved_address_is_checked(resolved: list[str], rule: str) -> None:
    with pytest.raises(UnsafeUrlError) as info:
        check_url("https://rebind.example/a.mp3", lambda host, port: resolved)
    assert info.value.rule == rule


@pytest.mark.parametrize("error", [OSError("no such name"), UnicodeError("label too long")])
def test_resolver_failures_are_typed(error: Exception) -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise error

    with pytest.raises(UnsafeUrlError) as info:
        check_url("https://gone.example/a.mp3", resolver)
    assert info.value.rule == "unresolvable"


@pytest.mark.parametrize(
    ("url", "address", "host_header", "for_address"),
    [
        ("https://cdn.example/a?x=1", PUBLIC, "cdn.example", f"https://{PUBLIC}/a?x=1"),
        ("https://cdn.example:8443/a", PUBLIC, "cdn.example:8443", f"https://{PUBLIC}:8443/a"),
        (
            "https://[2606:4700::1]:8443/a",
            "2606:4700::1",
            "[2606:4700::1]:8443",
            "https://[2606:4700::1]:8443/a",
        ),
        ("https://[2606:4700::1]/", "2606:4700::1", "[2606:4700::1]", "https://[2606:4700::1]/"),
        ("https://93.184.215.14:444/", PUBLIC, "93.184.215.14:444", f"https://{PUBLIC}:444/"),
    ],
)
def test_host_header_and_address_url(
    url: str, address: str, host_header: str, for_address: str
) -> None:
    checked = check_url(url, public_resolver)
    assert str(checked.address) == address
    assert checked.host_header == host_header
    assert checked.url_for_address() == for_address
