"""The store's webhook contract. Unknown fields are ignored: the store may add fields over time."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from app.domain.clock import supported

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


class StoreModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Buyer(StoreModel):
    type: Literal["customer", "partner"]
    partner_id: Ident | None = None


class StoreCustomer(StoreModel):
    store_customer_id: Ident | None = None
    company: Text
    country: Country
    email: Annotated[str, StringConstraints(max_length=320), AfterValidator(_clean)] | None = None
    vat_id: Annotated[str, StringConstraints(max_length=64), AfterValidator(_clean)] | None = None


class StoreOrderLine(StoreModel):
    line_id: Ident
    sku: Sku
    quantity: StrictInt = Field(ge=1, le=1_000_000)
    kind: Literal["new", "renewal"]
    licence_id: Ident | None = None
    term_end: Time | None = None
    list_amount: Amount
    discount_amount: Amount = 0
    paid_amount: Amount


class OrderPaidData(StoreModel):
    order_id: Ident
    placed_at: Time
    currency: Currency
    buyer: Buyer
    customer: StoreCustomer
    lines: list[StoreOrderLine] = Field(min_length=1, max_length=500)


class RefundLine(StoreModel):
    line_id: Ident
    amount: Annotated[StrictInt, Field(ge=1, le=10**13)]


class OrderRefundedData(StoreModel):
    order_id: Ident
    refund_id: Ident
    refunded_at: Time
    lines: list[RefundLine] = Field(min_length=1, max_length=500)


class LicenceLapsedData(StoreModel):
    licence_id: Ident
    lapsed_at: Time


class OrderPaid(StoreModel):
    type: Literal["order.paid"]
    occurred_at: Time | None = None
    data: OrderPaidData


class OrderRefunded(StoreModel):
    type: Literal["order.refunded"]
    occurred_at: Time | None = None
    data: OrderRefundedData


class LicenceLapsed(StoreModel):
    type: Literal["licence.lapsed"]
    occurred_at: Time | None = None
    data: LicenceLapsedData


StoreEvent = Annotated[OrderPaid | OrderRefunded | LicenceLapsed, Field(discriminator="type")]
KNOWN_TYPES = ("order.paid", "order.refunded", "licence.lapsed")


def content_hash(data: StoreModel) -> str:
    """A digest of what the event says, ignoring fields this service does not read."""
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
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
                    "paid_amount": 96000,
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
