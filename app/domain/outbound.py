"""Outbound HTTP for webhooks: which targets are allowed, and one signed POST.

In production a target must be `https` and every address its name resolves to must be globally
routable (`globally_routable`: the IANA special-purpose registries, and the IPv4 address an IPv6
address carries). The name is resolved once per call, checked, and the connection
is made to the checked address (the name still goes in `Host` and TLS SNI, and the certificate is
verified against it), so a DNS answer that changes between the check and the call (rebinding) cannot
send the request elsewhere. PARTNERS_OUTBOUND_ALLOW_PRIVATE=true lifts both rules (the default in
development and test, so a receiver on 127.0.0.1 works).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass

import httpx
import idna

from app import tracing

TIMEOUT_SECONDS = 10.0
KEPT_ANSWER_BYTES = 1024
_LOCAL_NAMES = ("localhost", ".localhost", ".localdomain", ".local", ".internal", ".home.arpa")


class TargetRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


_V4_NOT_GLOBAL = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.31.196.0/24",  # AS112
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # private
        "192.175.48.0/24",  # direct delegation AS112
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the limited broadcast 255.255.255.255
    )
)
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
"""Everything outside it (unspecified, loopback, IPv4-compatible and -mapped, NAT64, discard,
unique-local, link-local, the deprecated site-local fec0::/10, multicast, unassigned) is not global,
except the embeddings below that carry an IPv4 address to reach."""
_V6_NOT_GLOBAL = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID...
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing (SRv6) SIDs
    )
)
_V6_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_V6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
"""The well-known NAT64 prefix: the translator sends to the IPv4 address in the last 32 bits. The
local-use prefix 64:ff9b:1::/48 reaches a network's own translator, so is never global."""
_V6_6TO4 = ipaddress.IPv6Network("2002::/16")
"""6to4: the relay sends to the IPv4 address in bits 16 to 48."""


def _translated_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address traffic to this IPv6 address goes to, when its prefix says so: IPv4-mapped
    (a dual-stack socket connects over IPv4), well-known NAT64, 6to4."""
    value = int(ip)
    if ip in _V6_MAPPED or ip in _V6_NAT64:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip in _V6_6TO4:
        return ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF)
    return None


def _isatap_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address of an ISATAP interface identifier (`…:0:5efe:a.b.c.d`, or `200:5efe`)."""
    value = int(ip)
    if (value >> 32) & 0xFDFFFFFF == 0x00005EFE:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


def globally_routable(address: str) -> bool:
    """Whether a webhook may be sent to this address: a unicast address reachable on the internet,
    and so is any IPv4 address it carries inside (RFC 6890 and the IANA special-purpose registries).
    IPv4-compatible addresses (`::a.b.c.d`) are deprecated and never routed, so never global."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return not any(ip in n for n in _V4_NOT_GLOBAL) and ip.is_global
    translated = _translated_v4(ip)
    if translated is not None:
        return globally_routable(str(translated))
    if ip not in _V6_GLOBAL_UNICAST or any(ip in n for n in _V6_NOT_GLOBAL) or not ip.is_global:
        return False
    isatap = _isatap_v4(ip)
    return isatap is None or globally_routable(str(isatap))


def _literal(host: str) -> str | None:
    """The address a host is written as, if it is one: also the IPv4 forms a resolver reads as an
    address (`2130706433`, `0x7f.1`, `127.1`)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host) and re.search(r"[0-9]", host):
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(host)))
        except OSError:
            return None
    return None


def check_url(url: str, *, allow_private: bool) -> httpx.URL:
    """What can be said of a target without resolving its name. Raises TargetRefused."""
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # a name starting with an A-label is decoded here: a malformed one raises
        for label in host.split("."):
            if label.lower().startswith("xn--"):  # and so must every other A-label
                idna.decode(label)
    except (httpx.InvalidURL, ValueError) as exc:  # IDNAError is a ValueError
        raise TargetRefused("webhook_url_invalid", f"Not a URL: {exc}.") from None
    if parsed.scheme not in ("http", "https") or not host:
        raise TargetRefused("webhook_url_invalid", "A target is an absolute http(s) URL.")
    if parsed.userinfo:
        raise TargetRefused("webhook_url_invalid", "A target URL carries no user name or password.")
    if allow_private:
        return parsed
    host = parsed.host.lower().rstrip(".")
    literal = _literal(host)
    if (literal is not None and not globally_routable(literal)) or host.endswith(_LOCAL_NAMES) or host == "localhost":
        raise TargetRefused(
            "webhook_target_not_global",
            f"{parsed.host} is not a globally routable address; this service sends webhooks only to the internet.",
        )
    if parsed.scheme != "https":
        raise TargetRefused("webhook_target_not_https", "Webhook targets must use https.")
    return parsed


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a name resolves to (tests replace this to play a DNS answer)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    url: str
    """What to connect to: the checked address in place of the name, when checks apply."""
    host: str | None = None
    """The name, for `Host` and TLS SNI, when `url` holds an address."""


async def target(url: str, *, allow_private: bool) -> Target:
    """Check a target and pin the address to connect to. Raises TargetRefused."""
    parsed = check_url(url, allow_private=allow_private)
    if allow_private:
        return Target(url)
    host = parsed.host
    literal = _literal(host)
    if literal is not None:
        return Target(url)  # an address checked by check_url; nothing to resolve
    port = parsed.port or 443
    try:
        addresses = await resolve(host, port)
    except OSError as exc:
        raise TargetRefused("webhook_target_unresolved", f"{host} does not resolve: {exc}.") from None
    refused = [address for address in addresses if not globally_routable(address)]
    if not addresses or refused:
        raise TargetRefused(
            "webhook_target_not_global",
            f"{host} resolves to {', '.join(refused) or 'nothing'}, not a globally routable address.",
        )
    address = addresses[0]
    pinned = parsed.copy_with(host=address)
    host_header = host if parsed.port is None else f"{host}:{parsed.port}"
    return Target(str(pinned), host_header)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    error: str | None
    answer: str | None
    """The first 1 KiB of the answer's body."""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def client() -> httpx.AsyncClient:
    """10 s timeout, no redirects followed, no proxies from the environment (they would connect
    elsewhere than the checked address)."""
    client = httpx.AsyncClient(
        timeout=TIMEOUT_SECONDS,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )
    tracing.instrument_client(client)  # when tracing is on: a span per call, `traceparent` sent along
    return client


async def post(
    http: httpx.AsyncClient, url: str, *, headers: dict[str, str], body: bytes, allow_private: bool
) -> Outcome:
    """One POST; never raises for what the network or the target does (it is the outcome)."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    def elapsed() -> int:
        return round((loop.time() - started) * 1000)

    try:
        pinned = await target(url, allow_private=allow_private)
        sent = dict(headers)
        extensions: dict[str, str] = {}
        if pinned.host is not None:
            sent["host"] = pinned.host
            extensions["sni_hostname"] = pinned.host.split(":")[0]
        async with http.stream("POST", pinned.url, headers=sent, content=body, extensions=extensions) as response:
            kept = b""
            async for chunk in response.aiter_bytes():
                kept += chunk
                if len(kept) >= KEPT_ANSWER_BYTES:
                    break
            status = response.status_code
    except TargetRefused as refused:
        return Outcome(None, elapsed(), f"refused: {refused.detail}", None)
    except httpx.TimeoutException:
        return Outcome(None, elapsed(), f"no answer within {TIMEOUT_SECONDS:g} s", None)
    except httpx.HTTPError as exc:
        return Outcome(None, elapsed(), f"{exc.__class__.__name__}: {exc}"[:1000], None)
    answer = kept[:KEPT_ANSWER_BYTES].decode("utf-8", errors="replace")
    error = None if 200 <= status < 300 else f"answered {status}"
    return Outcome(status, elapsed(), error, answer)
