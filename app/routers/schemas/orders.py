"""API schemas — store webhooks received, order flags, licences and quotes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.domain.rules.numbers import WholeInt
from app.domain.rules.terms import Level
from app.routers.fields import CountryCode, Name, Reason
from app.routers.schemas.common import Currency, Email, Money, RequestModel, Sku, VatId, request_examples
from app.routers.schemas.customers import StoreCustomerId

WebhookStatusName = Literal["accepted", "applied", "duplicate", "parked"]


class WebhookReceipt(BaseModel):
    event_id: int = Field(description="The stored store event's id.")
    status: WebhookStatusName = Field(
        description="`accepted` (stored; the worker applies it), `duplicate` (received before), or after a "
        "replay `applied` / `parked`."
    )
    url: str = Field(description="Where the stored event and its outcome can be read.")
    reason_code: str | None = Field(
        default=None,
        description="After a replay that parked it: why, as a stable code (e.g. `order_not_received`); null otherwise.",
    )
    reason: str | None = Field(default=None, description="That reason in a sentence; null otherwise.")


class WebhookEvent(BaseModel):
    id: int = Field(description="The stored store event's id.")
    webhook_id: str = Field(
        description="The `webhook-id` the store sent it with; a second event with the same one is a duplicate."
    )
    event_type: str = Field(description="The store event's type: `order.paid`, `order.refunded` or `licence.lapsed`.")
    subject: str = Field(description="What it is about: `order:<id>`, `refund:<id>` or `licence:<id>:<lapsed_at>`.")
    received_at: datetime = Field(description="When the service received it.")
    status: str = Field(
        description="`accepted` (waiting for the worker), `applied`, `duplicate` or `parked` (see `reason_code`)."
    )
    reason_code: str | None = Field(
        description="Why it was parked, or how it was applied, as a stable code; null when applied plainly."
    )
    reason: str | None = Field(description="That reason in a sentence; null when none.")
    applied_at: datetime | None = Field(description="When the worker applied it; null until then.")
    attempts: int = Field(description="How many times the worker tried to apply it.")
    failures: int = Field(description="Unexpected errors while applying it; at 5 it is parked as `apply_failed`.")
    waiting_for: str | None = Field(
        description="The subject it waits for, e.g. `order:<id>` for a refund that came first; it is replayed "
        "when that arrives."
    )
    body: str = Field(description="The body as the store sent it (its signature covers these bytes).")


class WebhookEventPage(BaseModel):
    items: list[WebhookEvent] = Field(description="Store events on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class DiscountMismatch(BaseModel):
    id: int = Field(description="The mismatch's id.")
    order_id: str = Field(description="The store order whose line has the wrong discount.")
    order_line_id: int = Field(description="The order line.")
    partner_id: uuid.UUID = Field(description="The buying partner.")
    expected_rate_bp: int = Field(
        description="The discount rate the partner's level gave at `placed_at` (R12), basis points."
    )
    expected_amount: int = Field(description="The discount that rate gives, minor units.")
    reported_amount: int = Field(description="The discount the store reported, minor units.")
    reason: str = Field(description="The difference, in a sentence.")
    recorded_at: datetime = Field(description="When the service found it.")


OrderFlagKind = Literal["discount_mismatch", "nfr_resale", "own_company", "relationship_conflict"]


class OrderFlag(BaseModel):
    """An order an admin should review (R12, R17, R22)."""

    id: int = Field(description="The flag's id.")
    kind: OrderFlagKind = Field(
        description="What is wrong: `discount_mismatch` (R12), `nfr_resale` (R17), `own_company` (R22) or "
        "`relationship_conflict` (R08)."
    )
    order_id: str = Field(description="The store order flagged.")
    order_line_id: int | None = Field(description="The order line flagged; null when the whole order is.")
    partner_id: uuid.UUID | None = Field(description="The partner concerned; null when none.")
    detail: str = Field(description="What was found, in a sentence.")
    recorded_at: datetime = Field(description="When the service flagged it.")
    resolved_at: datetime | None = Field(description="When an admin resolved it; null while open.")
    resolved_by: str | None = Field(description="The admin who resolved it (`admin:<key id>`); null while open.")
    resolution: str | None = Field(description="How it was resolved, as the admin wrote; null while open.")


class OrderFlagPage(BaseModel):
    items: list[OrderFlag] = Field(description="Order flags on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class LicenceOut(BaseModel):
    licence_id: str = Field(description="The licence's id at the store.")
    order_id: str = Field(description="The order whose line sold it.")
    partner_id: uuid.UUID | None = Field(description="The partner its points went to; null when none earned.")
    customer_id: uuid.UUID = Field(description="The customer who holds it.")
    sku: str = Field(description="The licence's SKU.")
    quantity: int = Field(description="How many seats or units the line sold.")
    points_per_unit: int = Field(description="Points per unit it earned under the terms of its order (R01).")
    term_end: datetime | None = Field(
        description="Null for a licence sold before the store had to give one (R23): it lapses only when the "
        "store reports it (R10)."
    )
    status: Literal["active", "lapsed"] = Field(description="`active`, or `lapsed` once not renewed (R10).")


class LicencePage(BaseModel):
    items: list[LicenceOut] = Field(description="Licences on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class ResolveRequest(RequestModel):
    model_config = request_examples(
        {"reason": "Checked with the store: the partner bought for a subsidiary with its own VAT id."}
    )

    reason: Reason = Field(
        examples=["Checked with the store: the partner bought for a subsidiary with its own VAT id."],
        description="How the flag was resolved; kept with it and in the audit log.",
    )


class QuoteCustomer(RequestModel):
    company: Name = Field(description="The customer's legal name.")
    country: CountryCode = Field(description="The customer's country: an ISO 3166-1 alpha-2 code, in either case.")
    email: Email | None = Field(
        default=None, description="The buyer's e-mail address; its domain identifies the customer (R05)."
    )
    vat_id: VatId | None = Field(default=None, description="The customer's VAT id; identifies it (R05).")
    store_customer_id: StoreCustomerId | None = Field(
        default=None, description="The customer's id at the store; identifies it (R05)."
    )


class QuoteLineIn(RequestModel):
    licence_id: StoreCustomerId | None = Field(default=None, description="For a renewal: the licence renewed.")
    sku: Sku = Field(description="The SKU quoted.")
    quantity: WholeInt = Field(ge=1, le=1_000_000, description="Units, 1 to 1000000.")
    kind: Literal["new", "renewal"] = Field(
        description="`new` for a first sale or up-sell, `renewal` for a renewal (R09)."
    )
    list_amount: Money = Field(
        description="The line's list price before discount, minor units of `currency`, tax excluded."
    )


class QuoteRequest(RequestModel):
    model_config = request_examples(
        {
            "partner_id": "0b6f5a3e-4c1d-4e8a-9f2b-7d3c1a5e9b10",
            "customer": {
                "company": "Contoso SA",
                "country": "FR",
                "email": "it@contoso.example",
                "vat_id": "FR40303265045",
            },
            "currency": "EUR",
            "lines": [{"sku": "server-business", "quantity": 1, "kind": "new", "list_amount": 150000}],
        }
    )

    partner_id: uuid.UUID = Field(description="The partner buying for its customer (R12).")
    customer: QuoteCustomer = Field(description="The end customer the partner buys for.")
    currency: Currency = Field(examples=["EUR"])
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=500, description="The lines quoted, 1 to 500.")


class QuotedLine(BaseModel):
    sku: str = Field(description="The SKU.")
    quantity: int = Field(description="Units.")
    kind: str = Field(description="`new` or `renewal`.")
    list_amount: int = Field(description="List price, minor units.")
    discount_amount: int = Field(description="The partner's discount, minor units (R12).")
    net_amount: int = Field(description="What the partner pays: `list_amount` minus `discount_amount`, minor units.")


class QuoteResponse(BaseModel):
    partner_id: uuid.UUID = Field(description="The partner quoted.")
    currency: str = Field(description="The quote's ISO 4217 currency.")
    level: Level | None = Field(description="R03a: the level that prices an order placed now.")
    rate_bp: int = Field(description="The discount rate applied, basis points (R12); 0 with `no_discount_reason`.")
    lines: list[QuotedLine] = Field(description="The lines, priced.")
    no_discount_reason: str | None = Field(
        description="Why no discount applies: `customer_not_registered`, `customer_of_another_partner`, "
        "`relationship_conflict`, `partner_not_active`, `agreement_not_accepted`, `customer_ambiguous`, "
        "`nfr_licence`, `own_company` (R22); `outcome` gives the order's own code."
    )
    terms_version: int = Field(description="The terms version in force, which gave the rate (R21).")
    outcome: str = Field(
        description="What an order of these lines placed now would be recorded with, decided by the same rules "
        "that apply the order: `credited`, or why it earns nothing (`customer_not_registered`, "
        "`customer_of_another_partner`, `relationship_conflict`, `partner_not_eligible`, `own_company`, "
        "`nfr_licence_sold`), or the code it would wait with (`ambiguous_customer`). New codes may be added."
    )


class DiscountMismatchPage(BaseModel):
    items: list[DiscountMismatch] = Field(description="Discount mismatches on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")
