"""Outbound HTTP for webhooks: which targets are allowed, and one signed POST.

In production a target must be `https` and every address its name resolves to must be globally
routable (`ipaddress` `is_global`). The name is resolved once per call, checked, and the connection
is made to the checked address (the name still goes in `Host` and TLS SNI, and the certificate is
verified against it), so a DNS answer that changes between the check and the call (rebinding) cannot
send the request elsewhere. PARTNERS_OUTBOUND_ALLOW_PRIVATE=true lifts both rules (the default in
development and test, so a receiver on 127.0.0.1 works).
"""

from __future__ import annotations

import asyncio
import ipaddress
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


def _global(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_global
    return ip.is_global


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
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
    if (literal is not None and not _global(literal)) or host.endswith(_LOCAL_NAMES) or host == "localhost":
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
    refused = [address for address in addresses if not _global(address)]
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
