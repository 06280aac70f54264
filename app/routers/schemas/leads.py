"""API schemas — inbound leads and the offers that route them to partners."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.domain.rules.terms import Level
from app.routers.fields import CountryCode, Name, Reason
from app.routers.schemas.common import Email, OnePage, RequestModel, Sku, VatId, request_examples
from app.routers.schemas.customers import Domain
from app.routers.schemas.directory import Latitude, Longitude, ShortText


class LeadCreate(RequestModel):
    model_config = request_examples(
        {
            "company": "Northwind Traders SARL",
            "country": "FR",
            "region": "Bretagne",
            "city": "Rennes",
            "latitude": 48.117,
            "longitude": -1.678,
            "products": ["server-business"],
            "contact_name": "Louis Martin",
            "contact_email": "louis@northwind.example",
            "domain": "northwind.example",
        }
    )

    company: Name = Field(description="The prospect's legal name.")
    country: CountryCode = Field(
        description="The prospect's country: an ISO 3166-1 alpha-2 code; partners are ranked by it (R19)."
    )
    region: ShortText | None = Field(
        default=None,
        description="The prospect's region, at most 100 characters; ranks partners of the same region first (R19).",
    )
    city: ShortText | None = Field(default=None, description="The prospect's city, at most 100 characters.")
    latitude: Latitude | None = Field(
        default=None, description="The prospect's latitude in degrees, -90 to 90; ranks partners by distance (R19)."
    )
    longitude: Longitude | None = Field(default=None, description="The prospect's longitude in degrees, -180 to 180.")
    products: list[Sku] = Field(
        default_factory=list, max_length=20, description="The SKUs the prospect asked about, at most 20."
    )
    contact_name: Name = Field(description="The prospect's contact.")
    contact_email: Email = Field(
        description="That contact's e-mail address; given to the partner that accepts the lead."
    )
    vat_id: VatId | None = Field(default=None, description="The prospect's VAT id; identifies the customer (R05).")
    domain: Domain | None = Field(
        default=None, description="The prospect's e-mail domain; identifies the customer (R05)."
    )


class RankedPartner(BaseModel):
    partner_id: uuid.UUID = Field(description="The partner's id.")
    name: str = Field(description="The partner's company name.")
    level: Level = Field(description="The partner's level (R02).")
    tier: int = Field(description="0 same country and region, 1 same country, 2 same continent, 3 elsewhere.")
    distance_km: float | None = Field(description="Kilometres from the prospect; null when either has no coordinates.")
    open_leads: int = Field(description="Offers the partner holds that are not answered yet.")
    reason: str = Field(description="Why it ranks there, in a sentence.")


class LeadOfferOut(BaseModel):
    id: uuid.UUID = Field(description="The offer's id.")
    lead_id: uuid.UUID = Field(description="The lead offered.")
    partner_id: uuid.UUID = Field(description="The partner it was offered to.")
    registration_id: uuid.UUID | None = Field(
        description="The registration the offer made for the partner; null when none."
    )
    state: Literal["offered", "accepted", "declined", "expired", "withdrawn", "refused"] = Field(
        description="`offered`, then `accepted`, `declined`, `expired` at its deadline, `withdrawn` or `refused` (R19)."
    )
    rank_reason: str = Field(description="Why the partner was chosen.")
    reason: str | None = Field(description="Why it was declined, withdrawn or refused; null otherwise.")
    offered_at: datetime = Field(description="When it was offered.")
    deadline: datetime | None = Field(
        description="When an unanswered offer expires: `offered_at` plus the terms' `lead_offer_days` (R19)."
    )
    ended_at: datetime | None = Field(description="When it stopped being open; null while offered.")


class LeadOut(BaseModel):
    id: uuid.UUID = Field(description="The lead's id.")
    company: str = Field(description="The prospect's legal name.")
    country: str = Field(description="The prospect's country: ISO 3166-1 alpha-2.")
    region: str | None = Field(description="The prospect's region; null when none.")
    city: str | None = Field(description="The prospect's city; null when none.")
    products: list[str] = Field(description="The SKUs it asked about.")
    status: Literal["open", "offered", "accepted", "exhausted"] = Field(
        description="`open`, `offered` to a partner, `accepted`, or `exhausted` when no partner is left to try (R19)."
    )
    created_at: datetime = Field(description="When it was posted.")
    ranking: list[RankedPartner] = Field(description="Active partners, best first, in the order offers go (R19).")
    history: list[LeadOfferOut] = Field(description="Its offers, oldest first.")


class LeadAssignment(RequestModel):
    model_config = request_examples({"partner_id": "0b6f5a3e-4c1d-4e8a-9f2b-7d3c1a5e9b10"}, {})

    partner_id: uuid.UUID | None = Field(default=None, description="Default: the best-ranked partner not tried yet.")


class OfferDecline(RequestModel):
    model_config = request_examples({"reason": "We have no consultant free in that region this quarter."})

    reason: Reason | None = Field(default=None, description="Why the partner declines; optional.")


class LeadOfferList(OnePage):
    items: list[LeadOfferOut] = Field(description="Lead offers.")
