"""Pre-built HTTP requests for wrk: signed webhooks, status reads, health probes, and their mix."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.seed import Target

WEBHOOK_PATH = "/v1/webhooks/store"
# (sku, quantity, net, tax) of the two lines of every benchmark order: new licences, no discount, 20 %
# tax; the store's `paid_amount` is net + tax, and commission is computed on the net (R23).
ORDER_LINES: tuple[tuple[str, int, int, int], ...] = (
    ("desktop", 2, 96000, 19200),
    ("server-business", 1, 250000, 50000),
)


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks, written from the specification rather than imported from the service:
    `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")), the key being the base64 after `whsec_`."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def raw_request(method: str, path: str, host: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(frozen=True)
class WebhookOrder:
    order_id: str
    webhook_id: str
    partner_index: int


def order_event(order_id: str, target: Target, placed_at: datetime) -> bytes:
    term_end = placed_at + timedelta(days=365)
    event = {
        "type": "order.paid",
        "occurred_at": iso(placed_at + timedelta(seconds=1)),
        "data": {
            "order_id": order_id,
            "placed_at": iso(placed_at),
            "currency": "EUR",
            "buyer": {"type": "customer"},
            "customer": {
                "store_customer_id": target.store_customer_id,
                "company": target.customer_company,
                "country": target.customer_country,
                "email": f"it@{target.customer_domain}",
            },
            "lines": [
                {
                    "line_id": f"l{n + 1}",
                    "sku": sku,
                    "quantity": quantity,
                    "kind": "new",
                    "licence_id": f"{order_id}-l{n + 1}",
                    "term_end": iso(term_end),
                    "list_amount": net,
                    "discount_amount": 0,
                    "tax_amount": tax,
                    "paid_amount": net + tax,
                }
                for n, (sku, quantity, net, tax) in enumerate(ORDER_LINES)
            ],
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def webhook_request(
    *,
    host: str,
    secret: str,
    webhook_id: str,
    body: bytes,
    timestamp: int,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    stamp = str(timestamp)
    headers = [
        ("Content-Type", "application/json"),
        ("webhook-id", webhook_id),
        ("webhook-timestamp", stamp),
        ("webhook-signature", sign(secret, webhook_id, stamp, body)),
    ]
    return raw_request("POST", WEBHOOK_PATH, host, headers, body)


def build_webhooks(
    *, host: str, secret: str, prefix: str, count: int, targets: Sequence[Target], now: datetime
) -> tuple[list[bytes], list[WebhookOrder]]:
    """`count` signed order.paid requests with unique order and webhook ids, cycling over the partners.
    All carry the signing time `now`: send them within five minutes."""
    placed_at = now - timedelta(minutes=1)
    timestamp = int(now.timestamp())
    requests: list[bytes] = []
    orders: list[WebhookOrder] = []
    for n in range(count):
        target = targets[n % len(targets)]
        order_id = f"{prefix}-{n}"
        webhook_id = f"msg-{order_id}"
        body = order_event(order_id, target, placed_at)
        requests.append(
            webhook_request(host=host, secret=secret, webhook_id=webhook_id, body=body, timestamp=timestamp)
        )
        orders.append(WebhookOrder(order_id, webhook_id, target.index))
    return requests, orders


def status_path(target: Target) -> str:
    return f"/v1/partners/{target.partner_id}/status"


def build_status(*, host: str, targets: Sequence[Target], start: int = 0) -> list[bytes]:
    """One status read per partner with its own key, starting at partner `start`."""
    ordered = [*targets[start:], *targets[:start]]
    return [raw_request("GET", status_path(t), host, [("Authorization", f"Bearer {t.key}")], b"") for t in ordered]


QUOTE_PATH = "/v1/pricing/quote"


def quote_body(target: Target) -> bytes:
    """The quote the store asks for before a partner buys the benchmark order's lines for its customer 0
    (a customer in a referral relationship with it, named by its store id)."""
    body = {
        "partner_id": str(target.partner_id),
        "customer": {
            "company": target.customer_company,
            "country": target.customer_country,
            "store_customer_id": target.store_customer_id,
        },
        "currency": "EUR",
        "lines": [
            {"sku": sku, "quantity": quantity, "kind": "new", "list_amount": net}
            for sku, quantity, net, _tax in ORDER_LINES
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def build_quote(*, host: str, targets: Sequence[Target], store_key: str) -> list[bytes]:
    """One quote per partner, partners in turn, with the store's key."""
    headers = [("Authorization", f"Bearer {store_key}"), ("Content-Type", "application/json")]
    return [raw_request("POST", QUOTE_PATH, host, headers, quote_body(t)) for t in targets]


def build_reference(*, host: str, partners: int) -> list[bytes]:
    """The reference app's read (bench/reference.py) of each baseline balance row in turn."""
    return [raw_request("GET", f"/balances/{n}", host) for n in range(1, partners + 1)]


def build_health(*, host: str) -> list[bytes]:
    return [raw_request("GET", "/health/live", host)]


def write_request_files(prefix: Path, requests: Sequence[bytes], threads: int) -> None:
    """Split the requests round-robin over wrk's threads: `<prefix>.<thread>` each (see wrk.lua)."""
    if not requests:
        raise ValueError("no requests to write")
    for thread in range(threads):
        share = requests[thread::threads] or requests[:1]
        with open(f"{prefix}.{thread}", "wb") as handle:
            for request in share:
                handle.write(f"{len(request)}\n".encode())
                handle.write(request)


DIRECTORY_PATH = "/v1/directory"


def directory_paths(levels: Sequence[str], countries: Sequence[str]) -> list[str]:
    """What visitors of the public directory ask for: first pages, a few deeper ones, filters."""
    paths = [DIRECTORY_PATH, f"{DIRECTORY_PATH}?page=2", f"{DIRECTORY_PATH}?page=3", f"{DIRECTORY_PATH}?per_page=50"]
    paths += [f"{DIRECTORY_PATH}?country={c}" for c in countries]
    paths += [f"{DIRECTORY_PATH}?level={level}" for level in levels]
    paths += [f"{DIRECTORY_PATH}?language={lang}" for lang in ("en", "fr", "de")]
    paths += [
        f"{DIRECTORY_PATH}?country=FR&language=fr",
        f"{DIRECTORY_PATH}?country=DE&page=2",
        f"{DIRECTORY_PATH}?q=training",
        f"{DIRECTORY_PATH}?region=region%203",
    ]
    return paths


def build_directory(*, host: str, levels: Sequence[str], countries: Sequence[str]) -> list[bytes]:
    return [raw_request("GET", path, host) for path in directory_paths(levels, countries)]


def interleave_mix(
    webhooks: Sequence[bytes], reads: Sequence[bytes], directory: Sequence[bytes], reads_per_webhook: int
) -> list[bytes]:
    """W R R R D W R R R D ...: every webhook once, reads and directory pages cycled (20/60/20)."""
    mixed: list[bytes] = []
    r = d = 0
    for request in webhooks:
        mixed.append(request)
        for _ in range(reads_per_webhook):
            mixed.append(reads[r % len(reads)])
            r += 1
        if directory:
            mixed.append(directory[d % len(directory)])
            d += 1
    return mixed
