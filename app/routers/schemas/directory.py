"""API schemas — the public directory, its reviews, and not-for-resale licences."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from app.domain.rules.numbers import NUMBER
from app.domain.rules.terms import Level
from app.routers.fields import TEXT_PATTERN, LanguageCode, strip
from app.routers.schemas.common import OnePage, RequestModel, Sku, Website, request_examples

DirectoryReviewStatus = Literal["pending", "approved", "rejected", "superseded", "resolved"]


DirectoryReviewKind = Literal["text", "name_and_website", "company_name"]


class DirectoryReview(BaseModel):
    """Public text, or a new company name and website, waiting for an admin (R18), or a company name
    registered before R20 checked it."""

    id: int = Field(description="The review's id.")
    partner_id: uuid.UUID = Field(description="The partner whose text or name it is.")
    kind: DirectoryReviewKind = Field(
        description="`text` (description and services), `name_and_website`, or `company_name` (a name "
        "registered before R20 checked it)."
    )
    description: str | None = Field(description="`text`: the description submitted; null otherwise or when emptied.")
    services: list[str] = Field(description="`text`: the services submitted; empty otherwise.")
    company: str | None = Field(description="`name_and_website`: the name to show; `company_name`: the name.")
    website: str | None = Field(default=None, description="`name_and_website`: the website to show (null: none).")
    submitted_at: datetime = Field(description="When it was submitted.")
    status: DirectoryReviewStatus = Field(
        description="`pending` until decided; `approved`, `rejected`, `superseded` by a later submission, or "
        "`resolved`."
    )
    decided_at: datetime | None = Field(description="When an admin decided; null while pending.")
    decided_by: str | None = Field(description="The admin who decided (`admin:<key id>`); null while pending.")
    reason: str | None = Field(description="Why it was rejected (or how it was resolved).")


class DirectoryReviewPage(BaseModel):
    items: list[DirectoryReview] = Field(description="Directory reviews on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False), NUMBER]


Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False), NUMBER]


ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"), AfterValidator(strip)
]


Description = Annotated[str, StringConstraints(max_length=2000, pattern=TEXT_PATTERN), AfterValidator(strip)]


class DirectoryProfileUpdate(RequestModel):
    """Null empties a field, but for the lists (emptied with `[]`) and `listed`."""

    model_config = request_examples(
        {
            "description": "Qalyptus reporting for finance teams in Brittany and Normandy.",
            "services": ["implementation", "training"],
            "regions_served": ["Bretagne", "Normandie"],
            "region": "Bretagne",
            "languages": ["fr", "en"],
            "latitude": 48.117,
            "longitude": -1.678,
        }
    )

    description: Description | None = Field(
        default=None,
        description="The partner's public text, at most 2000 characters; reviewed by an admin before it shows "
        "(R18, R20).",
    )
    services: Annotated[list[ShortText], Field(max_length=30)] | SkipJsonSchema[None] = Field(
        default=None,
        description="The services the partner offers, at most 30 of 100 characters; reviewed with the text (R18).",
    )
    regions_served: Annotated[list[ShortText], Field(max_length=50)] | SkipJsonSchema[None] = Field(
        default=None, description="The regions the partner serves, at most 50 of 100 characters."
    )
    region: ShortText | None = Field(default=None, description="The partner's own region, at most 100 characters.")
    listed: StrictBool | SkipJsonSchema[None] = Field(
        default=None, description="False takes the partner out of the directory."
    )
    website: Website | None = Field(
        default=None, description="A new website: an http or https URL; reviewed before the directory shows it (R18)."
    )
    languages: Annotated[list[LanguageCode], Field(max_length=20)] | SkipJsonSchema[None] = Field(
        default=None, description="The languages the partner works in: ISO 639-1 codes, at most 20."
    )
    latitude: Latitude | None = Field(
        default=None, description="The partner's latitude in degrees, -90 to 90; ranks it for leads by distance (R19)."
    )
    longitude: Longitude | None = Field(
        default=None,
        description="The partner's longitude in degrees, -180 to 180; ranks it for leads by distance (R19).",
    )


class DirectoryEntry(BaseModel):
    """The public fields of a partner, and nothing else."""

    id: uuid.UUID = Field(description="The partner's id.")
    name: str = Field(description="The company name the directory shows (R18, R20).")
    level: Level = Field(description="The partner's level (R02).")
    country: str = Field(description="The partner's country: ISO 3166-1 alpha-2.")
    region: str | None = Field(description="The partner's region; null when none.")
    website: str | None = Field(description="The approved website; null when none.")
    languages: list[str] = Field(description="The languages the partner works in: ISO 639-1 codes.")
    services: list[str] = Field(description="The approved services.")
    regions_served: list[str] = Field(description="The regions the partner serves.")
    description: str | None = Field(description="The approved public text; null when none.")


class DirectoryPage(BaseModel):
    items: list[DirectoryEntry] = Field(description="Listed partners on this page.")
    page: int = Field(description="This page's number, from 1.")
    per_page: int = Field(description="Entries per page.")
    has_more: bool = Field(description="Whether page `page + 1` holds more partners.")


NfrPurpose = Literal["demonstration", "training", "evaluation"]


class NfrRequest(RequestModel):
    model_config = request_examples({"sku": "server-business", "purpose": "demonstration", "acknowledged": True})

    sku: Sku = Field(description="The SKU of the free licence (R17).")
    purpose: NfrPurpose = Field(description="What the free licence is for (R17).", examples=["demonstration"])
    acknowledged: StrictBool = Field(
        json_schema_extra={"const": True},
        description="Must be true: the partner acknowledges the licence is not for its company's production "
        "needs nor for use inside a product or service sold to customers (OEM, API).",
        examples=[True],
    )


class NfrLicenceOut(BaseModel):
    id: uuid.UUID = Field(description="The not-for-resale licence's id.")
    partner_id: uuid.UUID = Field(description="The partner it was issued to.")
    sku: str = Field(description="Its SKU.")
    licence_id: str = Field(description="The licence's id at the store.")
    issued_at: datetime = Field(description="When it was issued.")
    purpose: NfrPurpose | None = Field(description="Null for licences issued before a purpose was asked.")
    acknowledged_at: datetime | None = Field(
        description="When the partner acknowledged its terms; null for licences issued before that was asked."
    )
    revoked_at: datetime | None = Field(description="When it was revoked; null while it holds.")
    revoked_reason: str | None = Field(description="Why it was revoked; null while it holds.")


class NfrViolationOut(BaseModel):
    id: int = Field(description="The violation's id.")
    licence_id: str = Field(description="The not-for-resale licence sold or quoted.")
    partner_id: uuid.UUID = Field(description="The partner it was issued to.")
    source: str = Field(description="Where it was seen: `order` (the store reported it sold) or `quote`.")
    order_id: str | None = Field(description="The store order; null for a quote.")
    recorded_at: datetime = Field(description="When it was recorded (R17).")


class NfrLicenceList(OnePage):
    items: list[NfrLicenceOut] = Field(description="Not-for-resale licences.")


class NfrViolationList(OnePage):
    items: list[NfrViolationOut] = Field(description="Not-for-resale licences seen sold or quoted (R17).")
