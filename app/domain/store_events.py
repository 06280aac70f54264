"""The store's webhook contract. Unknown fields are ignored: the store may add fields over time."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    model_validator,
)

from app.domain.clock import supported
from app.domain.rules.money import MONEY_CURRENCIES, NOT_MONEY, is_money

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def storable_text(value: str) -> bool:
    """Whether a string may be stored as it is: no control character (Postgres takes no NUL) and no
    lone surrogate (not encodable as UTF-8; JSON escapes can carry one)."""
    if _CONTROL.search(value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


Ident = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_clean)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_clean)]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$"), AfterValidator(str.upper)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Time = Annotated[AwareDatetime, AfterValidator(supported)]
Amount = Annotated[StrictInt, Field(ge=0, le=10**13)]


DELIVERY: dict[str, bool] = {"delivery": True}
"""Validation context of a new delivery: R23's checks apply. A stored body is read again (a replay, a
refund waiting for its order) without it: bodies recorded before `tax_amount` existed count as tax 0,
and what was accepted once stays readable."""


def _delivering(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("delivery"))


CURRENCY_PATTERN = "^(?:" + "|".join(MONEY_CURRENCIES) + ")$"
"""R23: what a new delivery's `currency` must match, as the published schemas say."""


def currency_is_money(code: str) -> bool:
    """R23: an ISO 4217 code of money (not just three capital letters, nor a fund, metal or test code)."""
    return is_money(code)


class StoreModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Buyer(StoreModel):
    type: Literal["customer", "partner"] = Field(
        description="`customer` when the customer bought itself (a referral order, R11), `partner` when a "
        "partner bought for it (resale, R12)."
    )
    partner_id: Ident | None = Field(
        default=None,
        description="For `partner`: the buying partner's id in this service (R08); omitted or null otherwise.",
    )


class StoreCustomer(StoreModel):
    store_customer_id: Ident | None = Field(
        default=None, description="The customer's id at the store; identifies it (R05)."
    )
    company: Text = Field(description="The customer's legal name, 1 to 200 characters.")
    country: Country = Field(description="The customer's country: an ISO 3166-1 alpha-2 code, in either case.")
    email: Annotated[str, StringConstraints(max_length=320), AfterValidator(_clean)] | None = Field(
        default=None,
        description="The buyer's e-mail address; its domain identifies the customer unless a public mail domain (R05).",
    )
    vat_id: Annotated[str, StringConstraints(max_length=64), AfterValidator(_clean)] | None = Field(
        default=None, description="The customer's VAT id; identifies it (R05)."
    )


def _as_delivered(schema: dict[str, Any]) -> None:
    """The published schema is what a new delivery must send: R23 requires `licence_id` and `term_end`
    (a body stored before they were required is still read without them)."""
    for name in ("licence_id", "term_end"):
        prop = schema["properties"][name]
        prop.update(next(v for v in prop.pop("anyOf") if v.get("type") != "null"))
        prop.pop("default", None)
        schema["required"].append(name)


class StoreOrderLine(StoreModel):
    model_config = ConfigDict(json_schema_extra=_as_delivered)

    line_id: Ident = Field(description="The line's id at the store, unique within the order; refunds name it.")
    sku: Sku = Field(description="The SKU sold: letters, digits and . _ -, at most 64 (R01).")
    quantity: StrictInt = Field(ge=1, le=1_000_000, description="Units sold, 1 to 1000000.")
    kind: Literal["new", "renewal"] = Field(
        description="`new` for a first sale or up-sell (earns points, R09), `renewal` for a renewal (earns "
        "commission only)."
    )
    licence_id: Ident | None = Field(
        default=None,
        description="The licence the line sells or renews; required on a new delivery (R23), and what a lapse "
        "names (R10).",
    )
    term_end: Time | None = Field(
        default=None,
        description="When the licence's term ends: after `placed_at`; required on a new delivery (R23). The "
        "licence lapses then plus the terms' `lapse_grace_days` unless renewed (R10).",
    )
    """R23: required on a new delivery of a `new` or `renewal` line; bodies stored before that replay
    without it."""
    list_amount: Amount = Field(
        description="The line's list price before discount, minor units of `currency`, tax excluded."
    )
    discount_amount: Amount = Field(
        default=0,
        description="The partner discount granted on the line, minor units; at most `list_amount`. One other "
        "than the partner's R12 rate gives is flagged for an admin (`discount_mismatch`).",
    )
    tax_amount: Amount = Field(
        description="The tax in `paid_amount`, minor units; commission is computed on `paid_amount - tax_amount` (R23)."
    )
    """R23: the tax in `paid_amount`; commission is computed on `paid_amount - tax_amount`."""
    paid_amount: Amount = Field(
        description="What was paid for the line, minor units: `list_amount - discount_amount + tax_amount` (R23)."
    )

    @model_validator(mode="after")
    def _amounts_add_up(self, info: ValidationInfo) -> StoreOrderLine:
        if not _delivering(info):
            return self
        if self.licence_id is None:
            raise ValueError(f"line {self.line_id}: licence_id is required")
        if self.term_end is None:  # `new` and `renewal` lines both sell a term
            raise ValueError(
                f"line {self.line_id}: term_end is required on a {self.kind} line "
                "(the store sells yearly subscriptions)"
            )
        if self.discount_amount > self.list_amount:
            raise ValueError(
                f"line {self.line_id}: discount_amount {self.discount_amount} is above list_amount {self.list_amount}"
            )
        expected = self.list_amount - self.discount_amount + self.tax_amount
        if self.paid_amount != expected:
            raise ValueError(
                f"line {self.line_id}: paid_amount {self.paid_amount} is not list_amount - discount_amount + "
                f"tax_amount = {expected}"
            )
        return self


def _currency_as_delivered(schema: dict[str, Any]) -> None:
    """The published schema is what a new delivery must send: a currency of money (R23); a body stored
    before is read with any three capital letters."""
    schema["properties"]["currency"]["pattern"] = CURRENCY_PATTERN
    schema["properties"]["currency"]["description"] = "An ISO 4217 code of money (not a fund, metal or test code)."


class OrderPaidData(StoreModel):
    model_config = ConfigDict(json_schema_extra=_currency_as_delivered)

    order_id: Ident = Field(
        description="The order's id at the store; a second delivery of it is a duplicate or a conflict."
    )
    placed_at: Time = Field(
        description="When the order was placed, RFC 3339 with an offset: its terms, level and eligibility are "
        "those of this moment (R03a, R04)."
    )
    currency: Currency
    buyer: Buyer = Field(description="Who paid: the customer itself or a partner for it (R08).")
    customer: StoreCustomer = Field(description="The end customer the licences are for (R05, R08).")
    lines: list[StoreOrderLine] = Field(min_length=1, max_length=500, description="The order's lines, 1 to 500.")

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> OrderPaidData:
        if not _delivering(info):
            return self
        if not currency_is_money(self.currency):
            if self.currency in NOT_MONEY:
                raise ValueError(
                    f"currency {self.currency} is not an ISO 4217 code of money "
                    "(it is a fund, metal, unit of account or test code)"
                )
            raise ValueError(f"currency {self.currency} is not an ISO 4217 code")
        for line in self.lines:
            if line.term_end is not None and line.term_end <= self.placed_at:
                raise ValueError(f"line {line.line_id}: term_end {line.term_end.isoformat()} is not after placed_at")
        return self


class RefundLine(StoreModel):
    line_id: Ident = Field(description="The refunded line of the order, as `line_id` named it.")
    amount: Annotated[StrictInt, Field(ge=1, le=10**13)] = Field(
        description="The amount refunded on the line, minor units of the order's currency, tax included; its "
        "share of commission and points is reversed (R14)."
    )


class OrderRefundedData(StoreModel):
    order_id: Ident = Field(description="The store order refunded.")
    refund_id: Ident = Field(description="The refund's id at the store; a second delivery of it is a duplicate.")
    refunded_at: Time = Field(
        description="When the refund was made, RFC 3339 with an offset; the reversal entries are effective then (R14)."
    )
    lines: list[RefundLine] = Field(min_length=1, max_length=500, description="The refunded lines, 1 to 500.")


class LicenceLapsedData(StoreModel):
    licence_id: Ident = Field(description="The licence that was not renewed.")
    lapsed_at: Time = Field(
        description="When it lapsed, RFC 3339 with an offset; its points are taken away then (R10)."
    )


class OrderPaid(StoreModel):
    type: Literal["order.paid"] = Field(description="`order.paid`: an order was paid.")
    occurred_at: Time | None = Field(default=None, description="When the store emitted the event; informational.")
    data: OrderPaidData = Field(description="The paid order.")


class OrderRefunded(StoreModel):
    type: Literal["order.refunded"] = Field(
        description="`order.refunded`: lines of an order were refunded or charged back (R14)."
    )
    occurred_at: Time | None = Field(default=None, description="When the store emitted the event; informational.")
    data: OrderRefundedData = Field(description="The refund.")


class LicenceLapsed(StoreModel):
    type: Literal["licence.lapsed"] = Field(description="`licence.lapsed`: a licence expired without renewal (R10).")
    occurred_at: Time | None = Field(default=None, description="When the store emitted the event; informational.")
    data: LicenceLapsedData = Field(description="The lapsed licence.")


StoreEvent = Annotated[OrderPaid | OrderRefunded | LicenceLapsed, Field(discriminator="type")]
KNOWN_TYPES = ("order.paid", "order.refunded", "licence.lapsed")
STORE_EVENT: TypeAdapter[OrderPaid | OrderRefunded | LicenceLapsed] = TypeAdapter(StoreEvent)


def parse_delivery(body: bytes) -> OrderPaid | OrderRefunded | LicenceLapsed:
    """A new delivery, from the JSON text, strictly: a timestamp must be an RFC 3339 string, a number a
    JSON number (no Unix times, no numbers in strings); R23's checks apply. Raises ValidationError."""
    return STORE_EVENT.validate_json(body, strict=True, context=DELIVERY)


def parse_stored(body: str | bytes) -> OrderPaid | OrderRefunded | LicenceLapsed:
    """A body stored when it was accepted, read again (a replay, a refund waiting for its order).

    Lines recorded before `tax_amount` existed count as tax 0 (R23); R23's other checks are not
    applied again, so a body accepted once stays readable."""
    payload = json.loads(body)
    if isinstance(payload, dict) and payload.get("type") == "order.paid":
        data = payload.get("data")
        for line in data.get("lines", []) if isinstance(data, dict) else []:
            if isinstance(line, dict):
                line.setdefault("tax_amount", 0)
    return STORE_EVENT.validate_python(payload)


def content_hash(data: StoreModel) -> str:
    """A digest of what the event says, ignoring fields this service does not read.

    A line's zero tax is left out, so an order recorded before `tax_amount` existed (tax 0, R23) and
    the same order delivered again with `"tax_amount": 0` have one digest: a duplicate, not a conflict.
    """
    dumped = data.model_dump(mode="json")
    if isinstance(data, OrderPaidData):
        for line in dumped["lines"]:
            if line["tax_amount"] == 0:
                del line["tax_amount"]
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def subject_of(event: OrderPaid | OrderRefunded | LicenceLapsed) -> str:
    if isinstance(event, OrderPaid):
        return f"order:{event.data.order_id}"
    if isinstance(event, OrderRefunded):
        return f"refund:{event.data.refund_id}"
    return f"licence:{event.data.licence_id}:{event.data.lapsed_at.isoformat()}"


EXAMPLES: dict[str, Any] = {
    "order.paid": {
        "type": "order.paid",
        "occurred_at": "2026-02-01T10:00:05Z",
        "data": {
            "order_id": "ord_1001",
            "placed_at": "2026-02-01T10:00:00Z",
            "currency": "EUR",
            "buyer": {"type": "customer"},
            "customer": {
                "store_customer_id": "cus_77",
                "company": "Contoso SA",
                "country": "FR",
                "email": "it@contoso.example",
                "vat_id": "FR40303265045",
            },
            "lines": [
                {
                    "line_id": "l1",
                    "sku": "desktop",
                    "quantity": 2,
                    "kind": "new",
                    "licence_id": "lic_9001",
                    "term_end": "2027-02-01T10:00:00Z",
                    "list_amount": 96000,
                    "discount_amount": 0,
                    "tax_amount": 19200,
                    "paid_amount": 115200,
                }
            ],
        },
    },
    "order.refunded": {
        "type": "order.refunded",
        "occurred_at": "2026-08-02T09:00:00Z",
        "data": {
            "order_id": "ord_1001",
            "refund_id": "ref_5",
            "refunded_at": "2026-08-02T09:00:00Z",
            "lines": [{"line_id": "l1", "amount": 48000}],
        },
    },
    "licence.lapsed": {
        "type": "licence.lapsed",
        "occurred_at": "2027-02-01T10:00:00Z",
        "data": {"licence_id": "lic_9001", "lapsed_at": "2027-02-01T10:00:00Z"},
    },
}
