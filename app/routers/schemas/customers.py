"""API schemas — customers and deal registrations, their imports and refusals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.routers.fields import CountryCode, Name, Reason, UtcDatetime, strip
from app.routers.schemas.common import Email, OnePage, RequestModel, VatId, request_examples

Domain = Annotated[
    str,
    StringConstraints(min_length=3, max_length=253, pattern=r"^[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$"),
    AfterValidator(strip),
]


StoreCustomerId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"), AfterValidator(strip)
]


class RegistrationRequest(RequestModel):
    model_config = request_examples(
        {
            "company": "Contoso SA",
            "country": "FR",
            "contact_name": "Marie Curie",
            "contact_email": "marie@contoso.example",
            "vat_id": "FR40303265045",
            "domain": "contoso.example",
        }
    )

    company: Name = Field(description="The customer's legal name.", examples=["Contoso SA"])
    country: CountryCode = Field(
        examples=["FR"], description="The customer's country: an ISO 3166-1 alpha-2 code, in either case (R05)."
    )
    contact_name: Name = Field(
        examples=["Marie Curie"], description="The name of the partner's contact at the customer."
    )
    contact_email: Email = Field(
        examples=["marie@contoso.example"],
        description="That contact's e-mail address; its domain also identifies the customer unless a public "
        "mail domain (R05).",
    )
    vat_id: VatId | None = Field(
        default=None,
        examples=["FR40303265045"],
        description="The customer's VAT id, checked against its country's rules; identifies the customer (R05).",
    )
    domain: Domain | None = Field(
        default=None, description="The company's own e-mail domain.", examples=["contoso.example"]
    )
    store_customer_id: StoreCustomerId | None = Field(
        default=None,
        description="The customer's id at the store, when the partner knows it; identifies the customer (R05).",
    )


RegistrationStateName = Literal["live", "offered", "converted", "expired", "withdrawn"]


class Registration(BaseModel):
    id: uuid.UUID = Field(description="The registration's id.")
    partner_id: uuid.UUID = Field(description="The partner that registered the customer.")
    customer_id: uuid.UUID = Field(description="The customer registered.")
    state: RegistrationStateName = Field(
        description="`live` within its window, `offered` (held for the partner by a lead offer until it "
        "accepts, R19), `converted` by an order, "
        "`expired` or `withdrawn` (R07)."
    )
    registered_at: datetime = Field(description="When the window started (R07).")
    expires_at: datetime = Field(
        description="When the window ends: `registered_at` plus the terms' `registration_window_days` (R07)."
    )
    days_left: int = Field(description="Whole days until the window ends (0 once it is not live).")
    company: str = Field(description="The customer's legal name as registered.")
    country: str = Field(description="The customer's country: ISO 3166-1 alpha-2.")
    contact_name: str = Field(description="The partner's contact at the customer.")
    contact_email: str = Field(description="That contact's e-mail address.")
    vat_id: str | None = Field(description="The customer's VAT id, normalised; null when none was given.")
    domain: str | None = Field(description="The customer's e-mail domain; null when none was given.")
    store_customer_id: str | None = Field(description="The customer's id at the store; null when none was given.")
    terms_version: int = Field(description="The terms version in force when it was registered (R21).")
    converted_order_id: str | None = Field(description="The store order that converted it (R08); null until then.")


class CustomerImportRow(RequestModel):
    company: Name = Field(description="The customer's legal name.")
    country: CountryCode = Field(description="The customer's country: an ISO 3166-1 alpha-2 code, in either case.")
    vat_id: VatId | None = Field(default=None, description="The customer's VAT id; identifies it (R05).")
    domain: Domain | None = Field(default=None, description="The customer's e-mail domain; identifies it (R05).")
    store_customer_id: StoreCustomerId | None = Field(
        default=None, description="The customer's id at the store; identifies it (R05)."
    )


class CustomerImport(RequestModel):
    model_config = request_examples(
        {
            "customers": [
                {"company": "Contoso SA", "country": "FR", "vat_id": "FR40303265045"},
                {"company": "Fabrikam GmbH", "country": "DE", "domain": "fabrikam.example"},
            ]
        }
    )

    customers: list[CustomerImportRow] = Field(
        min_length=1,
        max_length=10_000,
        description="The vendor's existing customers, 1 to 10000: each is marked existing, so partners cannot "
        "register it (R06).",
    )


class ImportError_(BaseModel):
    row: int = Field(description="The index of the refused row in `customers`, from 0.")
    detail: str = Field(description="Why the row was refused.")


class CustomerImportResult(BaseModel):
    created: int = Field(description="Rows that made a new customer, marked existing.")
    marked_existing: int = Field(description="Rows that matched a known customer, now marked existing.")
    unchanged: int = Field(description="Rows that matched a customer already marked existing.")
    errors: list[ImportError_] = Field(description="Rows refused, with why; the other rows were imported.")


class Customer(BaseModel):
    id: uuid.UUID = Field(description="The customer's id.")
    company: str = Field(description="The customer's legal name, as first recorded.")
    country: str = Field(description="The customer's country: ISO 3166-1 alpha-2.")
    created_at: datetime = Field(description="When the service first recorded the customer.")
    existing: bool = Field(description="Already bought from the vendor, or named in its import (R06).")
    first_purchase_at: datetime | None = Field(
        description="When the store reported its first paid order; null when none yet."
    )
    imported_at: datetime | None = Field(
        description="When the vendor's customer import named it (R06); null when it did not."
    )
    sales_process_until: datetime | None = Field(
        description="Until when the vendor's own sales process on it refuses registrations (R06); null when none."
    )
    sales_process_reason: str | None = Field(description="Why the vendor flagged its sales process; null when none.")
    identifiers: list[str] = Field(
        description="The identifiers it is known by (R05), each `kind:value` (`vat:FR40303265045`, "
        "`domain:contoso.example`, `store_id:...`)."
    )


class CustomerPage(BaseModel):
    items: list[Customer] = Field(description="Customers on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class SalesProcessFlag(RequestModel):
    model_config = request_examples(
        {"until": "2027-06-30T00:00:00Z", "reason": "Our own sales team is negotiating an enterprise deal."}
    )

    until: UtcDatetime = Field(
        description="Until when registrations of the customer are refused because the vendor sells to it itself (R06)."
    )
    reason: Reason = Field(description="Why; shown to partners whose registration is refused.")


class RegistrationRefusal(BaseModel):
    id: int = Field(description="The refusal's id.")
    partner_id: uuid.UUID = Field(description="The partner refused.")
    customer_id: uuid.UUID | None = Field(description="The customer it matched; null when it matched none.")
    code: str = Field(
        description="The refusal's stable code, e.g. `already_a_customer` (R06), `cool_off` (R06) or "
        "`registered_by_another_partner`."
    )
    detail: str = Field(description="Why, in the sentence the partner was given.")
    company: str = Field(description="The company name the partner sent.")
    identifiers: list[str] = Field(description="The identifiers sent, each `kind:value` (R05).")
    refused_at: datetime = Field(description="When it was refused.")


class RegistrationRefusalPage(BaseModel):
    items: list[RegistrationRefusal] = Field(description="Registration refusals on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class RegistrationList(OnePage):
    items: list[Registration] = Field(description="The partner's registrations.")
