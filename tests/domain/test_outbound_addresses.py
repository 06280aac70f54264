"""Which addresses a webhook may be sent to: globally routable unicast only, whatever IPv4 address
an IPv6 address carries inside it."""

from __future__ import annotations

import pytest

from app.domain import outbound

REFUSED = {
    # IPv4
    "0.0.0.0": "unspecified",
    "0.1.2.3": "this network",
    "10.20.30.40": "private",
    "100.64.7.7": "shared address space (carrier-grade NAT)",
    "127.0.0.1": "loopback",
    "127.200.1.1": "loopback",
    "169.254.169.254": "link-local (cloud metadata)",
    "172.20.1.1": "private",
    "192.0.0.9": "IETF protocol assignments",
    "192.0.0.170": "NAT64 discovery",
    "192.0.2.44": "documentation",
    "192.88.99.1": "6to4 relay anycast",
    "192.168.7.7": "private",
    "198.18.0.1": "benchmarking",
    "198.19.255.1": "benchmarking",
    "198.51.100.9": "documentation",
    "203.0.113.9": "documentation",
    "224.0.0.251": "multicast (mDNS)",
    "239.255.255.250": "multicast (SSDP)",
    "233.252.0.1": "multicast (documentation)",
    "240.0.0.1": "reserved",
    "255.255.255.255": "limited broadcast",
    # IPv6 of its own
    "::": "unspecified",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local with a zone",
    "fec0::1": "site-local (deprecated)",
    "fd12:3456:789a::1": "unique-local",
    "fc00::7": "unique-local",
    "ff02::1": "multicast, link scope",
    "ff0e::101": "multicast, global scope",
    "100::1": "discard",
    "2001:db8::1": "documentation",
    "3fff:1::1": "documentation",
    "2001:2::1": "benchmarking",
    "2001:10::1": "ORCHID",
    "2001:20::1": "ORCHIDv2",
    "5f00::1": "segment routing SIDs",
    "4000::1": "unassigned (outside 2000::/3)",
    "64:ff9b:1::a00:1": "local-use NAT64",
    "64:ff9b:1::808:808": "local-use NAT64, even to a public IPv4",
    # IPv6 carrying IPv4
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "64:ff9b::7f00:1": "NAT64 to loopback",
    "64:ff9b::10.0.0.1": "NAT64 to private",
    "64:ff9b::169.254.169.254": "NAT64 to link-local",
    "64:ff9b::224.0.0.1": "NAT64 to multicast",
    "2002:7f00:1::": "6to4 of loopback",
    "2002:a00:1::1": "6to4 of private",
    "2002:a9fe:a9fe::1": "6to4 of link-local",
    "2002:c0a8:101:1::5": "6to4 of private, with a subnet",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "2001::1": "Teredo",
    "::127.0.0.1": "IPv4-compatible loopback",
    "::10.0.0.1": "IPv4-compatible private",
    "::8.8.8.8": "IPv4-compatible (deprecated, never routed) even of a public address",
    "2001:470:1::5efe:10.0.0.1": "ISATAP of private",
    "2001:470:1::200:5efe:127.0.0.1": "ISATAP of loopback",
    "fd00::5efe:8.8.8.8": "ISATAP of public in a unique-local prefix",
    # not an address at all
    "not-an-address": "not an address",
}

ACCEPTED = {
    "8.8.8.8": "public IPv4",
    "93.184.215.14": "public IPv4",
    "1.1.1.1": "public IPv4",
    "2606:4700:4700::1111": "public IPv6",
    "2a00:1450:4001:81b::200e": "public IPv6",
    "::ffff:8.8.8.8": "IPv4-mapped public",
    "64:ff9b::8.8.8.8": "NAT64 to public",
    "2002:808:808::1": "6to4 of public",
    "2001:470:1::5efe:8.8.8.8": "ISATAP of public",
}


@pytest.mark.parametrize(("address", "why"), REFUSED.items(), ids=list(REFUSED))
def test_addresses_not_globally_routable_are_refused(address: str, why: str) -> None:
    assert outbound.globally_routable(address) is False, why


@pytest.mark.parametrize(("address", "why"), ACCEPTED.items(), ids=list(ACCEPTED))
def test_globally_routable_addresses_are_accepted(address: str, why: str) -> None:
    assert outbound.globally_routable(address) is True, why


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433/hooks",  # 127.0.0.1 as one number
        "https://0x7f.1/hooks",
        "https://127.1/hooks",
        "https://[64:ff9b::a9fe:a9fe]/hooks",
        "https://[2002:a9fe:a9fe::1]/hooks",
        "https://[::127.0.0.1]/hooks",
        "https://[fec0::1]/hooks",
        "https://[ff0e::1]/hooks",
        "https://224.0.0.1/hooks",
    ],
)
def test_a_url_written_with_an_address_is_checked_without_resolving(url: str) -> None:
    with pytest.raises(outbound.TargetRefused) as refused:
        outbound.check_url(url, allow_private=False)
    assert refused.value.code == "webhook_target_not_global"


def test_a_public_address_in_a_url_passes() -> None:
    assert outbound.check_url("https://[64:ff9b::808:808]/hooks", allow_private=False).host == "64:ff9b::808:808"
    assert outbound.check_url("https://134744072/hooks", allow_private=False)  # 8.8.8.8 as one number
