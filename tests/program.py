"""Shortcuts for rule tests: partners, registrations, signed store events, ledgers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.domain.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Api

_ids = itertools.count(1)
YEAR = timedelta(days=365)
"""The term a line sells when the test names none (the store sells yearly subscriptions, R23)."""


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Customer:
    company: str
    country: str = "FR"
    domain: str | None = None
    vat_id: str | None = None
    store_customer_id: str | None = None

    @classmethod
    def new(cls, name: str = "Contoso") -> Customer:
        n = next(_ids)
        slug = f"{name.lower()}{n}"
        return cls(company=f"{name} {n} SA", domain=f"{slug}.example", store_customer_id=f"cus_{slug}")

    def registration(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "company": self.company,
            "country": self.country,
            "contact_name": "Buyer",
            "contact_email": f"buyer@{self.domain}" if self.domain else "buyer@gmail.com",
        }
        if self.vat_id:
            body["vat_id"] = self.vat_id
        if self.store_customer_id:
            body["store_customer_id"] = self.store_customer_id
        return body

    def store(self) -> dict[str, Any]:
        data: dict[str, Any] = {"company": self.company, "country": self.country}
        if self.domain:
            data["email"] = f"it@{self.domain}"
        if self.vat_id:
            data["vat_id"] = self.vat_id
        if self.store_customer_id:
            data["store_customer_id"] = self.store_customer_id
        return data


def line(
    sku: str,
    quantity: int = 1,
    paid: int = 0,
    *,
    kind: str = "new",
    licence_id: str | None = None,
    term_end: datetime | None = None,
    list_amount: int | None = None,
    discount: int = 0,
    tax: int = 0,
    line_id: str | None = None,
) -> dict[str, Any]:
    """An order line; `paid` includes `tax` (R23), and each line names a licence (its own unless given)
    and, once in an order (`order_event`), a term end (a year after the order unless given)."""
    n = next(_ids)
    body: dict[str, Any] = {
        "line_id": line_id or f"l{n}",
        "sku": sku,
        "quantity": quantity,
        "kind": kind,
        "licence_id": licence_id or f"lic_{n}",
        "list_amount": list_amount if list_amount is not None else paid - tax + discount,
        "discount_amount": discount,
        "tax_amount": tax,
        "paid_amount": paid,
    }
    if term_end:
        body["term_end"] = iso(term_end)
    return body


class Receipt(Mapping[str, Any]):
    """A store event's answer as a mapping, read when it is first looked at (events delivered
    together are answered once applied)."""

    def __init__(self, response: Any) -> None:
        self.response = response

    def __getitem__(self, key: str) -> Any:
        return self.response.json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.response.json())

    def __len__(self) -> int:
        return len(self.response.json())


@dataclass
class Program:
    api: Api
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.api.client

    def at(self, moment: datetime | str) -> None:
        self.api.clock.at = t(moment) if isinstance(moment, str) else moment

    async def partner(self, at: str = "2026-01-05T09:00:00Z") -> tuple[str, str]:
        self.at(at)
        partner, key = await self.api.register()
        return partner["id"], key

    async def register(self, partner: tuple[str, str], customer: Customer, at: str | None = None) -> httpx.Response:
        if at:
            self.at(at)
        pid, key = partner
        return await self.client.post(
            f"/v1/partners/{pid}/registrations", json=customer.registration(), headers=self.api.bearer(key)
        )

    async def send(
        self,
        event: dict[str, Any],
        *,
        webhook_id: str | None = None,
        secret: str = WEBHOOK_SECRET,
        expect: int | None = None,
    ) -> httpx.Response:
        """Deliver a store event and answer as `Api.settled` does (`expect`: the answer's status)."""
        body = json.dumps(event).encode()
        wid = webhook_id or f"msg_{next(_ids)}"
        timestamp = str(int(self.api.clock.now().timestamp()))
        headers = {
            "webhook-id": wid,
            "webhook-timestamp": timestamp,
            "webhook-signature": sign(secret, wid, timestamp, body),
            "content-type": "application/json",
        }
        self.sent.append(event)
        response = await self.client.post("/v1/webhooks/store", content=body, headers=headers)
        return await self.api.settled(response, expect=expect)

    async def settle(self) -> None:
        """Apply the store events delivered together and not applied yet (`Api.settle`)."""
        await self.api.settle()

    def _arrive_after(self, moment: datetime) -> None:
        if self.api.clock.now() < moment + timedelta(minutes=1):
            self.at(moment + timedelta(minutes=1))

    async def order(
        self,
        customer: Customer,
        lines: list[dict[str, Any]],
        *,
        placed_at: str,
        buyer: str | None = None,
        order_id: str | None = None,
        currency: str = "EUR",
        expect: int = 200,
    ) -> dict[str, Any]:
        placed = t(placed_at)
        self._arrive_after(placed)
        event = order_event(customer, lines, placed_at=placed, buyer=buyer, order_id=order_id, currency=currency)
        response = await self.send(event, expect=expect)
        return {"event": event, "receipt": Receipt(response)}

    async def refund(
        self, order_id: str, lines: list[tuple[str, int]], *, at: str, refund_id: str | None = None, expect: int = 200
    ) -> httpx.Response:
        moment = t(at)
        self._arrive_after(moment)
        return await self.send(refund_event(order_id, lines, at=moment, refund_id=refund_id), expect=expect)

    async def lapse(self, licence_id: str, *, at: str, expect: int = 200) -> httpx.Response:
        moment = t(at)
        self._arrive_after(moment)
        event = {
            "type": "licence.lapsed",
            "occurred_at": iso(moment),
            "data": {"licence_id": licence_id, "lapsed_at": iso(moment)},
        }
        return await self.send(event, expect=expect)

    async def status(self, partner: tuple[str, str]) -> dict[str, Any]:
        response = await self.client.get(f"/v1/partners/{partner[0]}/status", headers=self.api.bearer(partner[1]))
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def points(self, partner: tuple[str, str]) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/partners/{partner[0]}/points-entries?limit=500", headers=self.api.admin)
        assert response.status_code == 200, response.text
        return list(reversed(response.json()["items"]))

    async def money(self, partner: tuple[str, str]) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/partners/{partner[0]}/money-entries?limit=500", headers=self.api.admin)
        assert response.status_code == 200, response.text
        return list(reversed(response.json()["items"]))

    async def total_points(self, partner: tuple[str, str]) -> int:
        return sum(e["points"] for e in await self.points(partner))

    async def total_money(self, partner: tuple[str, str], currency: str = "EUR") -> int:
        return sum(e["amount"] for e in await self.money(partner) if e["currency"] == currency)


def order_event(
    customer: Customer,
    lines: list[dict[str, Any]],
    *,
    placed_at: datetime,
    buyer: str | None = None,
    order_id: str | None = None,
    currency: str = "EUR",
) -> dict[str, Any]:
    return {
        "type": "order.paid",
        "occurred_at": iso(placed_at),
        "data": {
            "order_id": order_id or f"ord_{next(_ids)}",
            "placed_at": iso(placed_at),
            "currency": currency,
            "buyer": {"type": "partner", "partner_id": buyer} if buyer else {"type": "customer"},
            "customer": customer.store(),
            "lines": [line if "term_end" in line else {**line, "term_end": iso(placed_at + YEAR)} for line in lines],
        },
    }


def refund_event(
    order_id: str, lines: list[tuple[str, int]], *, at: datetime, refund_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "order.refunded",
        "occurred_at": iso(at),
        "data": {
            "order_id": order_id,
            "refund_id": refund_id or f"ref_{next(_ids)}",
            "refunded_at": iso(at),
            "lines": [{"line_id": line_id, "amount": amount} for line_id, amount in lines],
        },
    }
