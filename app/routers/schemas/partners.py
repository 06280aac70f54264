"""API schemas — partners: registration, profile, status changes, declared identifiers and standing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.routers.fields import CountryCode, LanguageCode, Name, Reason, VersionName
from app.routers.schemas.common import Email, OnePage, PartnerStatusName, RequestModel, VatId, Website, request_examples
from app.routers.schemas.keys import IssuedApiKey


class PartnerRegistration(RequestModel):
    model_config = request_examples(
        {
            "company": "Acme Analytics SARL",
            "country": "FR",
            "contact_name": "Jeanne Martin",
            "contact_email": "jeanne@acme-analytics.fr",
            "website": "https://acme-analytics.fr",
            "vat_id": "FR40303265045",
            "languages": ["fr", "en"],
            "accepted_agreement_version": "2026-01",
        }
    )

    company: Name = Field(
        examples=["Acme Analytics SARL"],
        description="The partner's company name, as registered; checked for the brand's spelling (R20).",
    )
    country: CountryCode = Field(
        examples=["FR"], description="The country of the partner's company: an ISO 3166-1 alpha-2 code, in either case."
    )
    contact_name: Name = Field(
        examples=["Jeanne Martin"], description="The name of the person the vendor deals with at the partner."
    )
    contact_email: Email = Field(
        examples=["jeanne@acme-analytics.fr"],
        description="The e-mail address of that contact; domains reserved for special use (`.test`, "
        "`.localhost`...) are refused.",
    )
    website: Website | None = Field(
        default=None,
        examples=["https://acme-analytics.fr"],
        description="The partner's website: an http or https URL of at most 2083 characters.",
    )
    vat_id: VatId | None = Field(
        default=None,
        description="The company's VAT id, checked against its country's rules; it identifies the partner's own "
        "company, which can never be its customer (R22).",
        examples=["FR40303265045"],
    )
    languages: list[LanguageCode] = Field(
        default_factory=list,
        max_length=20,
        examples=[["fr", "en"]],
        description="The languages the partner works in: ISO 639-1 codes, at most 20.",
    )
    accepted_agreement_version: VersionName = Field(
        description="The version of the partner agreement the partner accepts; must be the current one.",
        examples=["2026-01"],
    )


class PartnerProfileUpdate(RequestModel):
    model_config = request_examples(
        {"contact_name": "Paul Durand", "contact_email": "paul@acme-analytics.fr", "languages": ["fr", "en", "de"]}
    )

    company: Name | None = Field(default=None, description="A new company name (R20); omit to keep the current one.")
    country: CountryCode | None = Field(
        default=None, description="A new country: an ISO 3166-1 alpha-2 code; omit to keep the current one."
    )
    contact_name: Name | None = Field(default=None, description="A new contact name; omit to keep the current one.")
    contact_email: Email | None = Field(
        default=None, description="A new contact e-mail address; omit to keep the current one."
    )
    website: Website | None = Field(
        default=None, description="A new website: an http or https URL of at most 2083 characters; null removes it."
    )
    vat_id: VatId | None = Field(
        default=None, description="A new VAT id of the partner's own company (R22); null removes it."
    )
    languages: list[LanguageCode] | None = Field(
        default=None,
        max_length=20,
        description="The languages the partner works in, replacing the current list: ISO 639-1 codes, at most 20.",
    )


class Partner(BaseModel):
    id: uuid.UUID = Field(description="The partner's id.")
    company: str = Field(description="The partner's registered company name.")
    country: str = Field(description="The country of the partner's company: ISO 3166-1 alpha-2, upper case.")
    contact_name: str = Field(description="The name of the partner's contact.")
    contact_email: str = Field(description="The e-mail address of the partner's contact.")
    website: str | None = Field(description="The partner's registered website; null when it gave none.")
    vat_id: str | None = Field(description="The VAT id of the partner's own company (R22); null when it gave none.")
    languages: list[str] = Field(description="The languages the partner works in: ISO 639-1 codes, lower case.")
    status: PartnerStatusName = Field(
        description="Where the partner stands: `pending` until approved, `active`, `suspended` or `terminated` (R04)."
    )
    created_at: datetime = Field(description="When the partner registered.")
    updated_at: datetime = Field(description="When the partner's record last changed.")
    region: str | None = Field(
        default=None, description="The region the directory shows for the partner; null when it gave none (R18)."
    )
    listed: bool = Field(
        default=True, description="Whether the partner chose to be listed in the public directory (R18)."
    )
    description: str | None = Field(
        default=None,
        description="The directory text the partner submitted last, approved or not (R18); null when none.",
    )
    services: list[str] = Field(
        default_factory=list,
        description="The services the partner submitted last for the directory, approved or not (R18).",
    )
    published_description: str | None = Field(
        default=None, description="The description the directory shows: the last one an admin approved (R18)."
    )
    published_services: list[str] = Field(
        default_factory=list, description="The services the directory shows: the last ones an admin approved (R18)."
    )
    published_company: str | None = Field(
        default=None,
        description="The company name the directory shows: the registered one, then the last one an admin "
        "approved (R18); null for a partner registered before names were reviewed: its `company`, unchanged since.",
    )
    published_website: str | None = Field(
        default=None, description="The website the directory shows, like `published_company`."
    )
    hidden_reason: str | None = Field(
        default=None, description="Why an admin took the partner out of the directory; null when it did not."
    )
    regions_served: list[str] = Field(
        default_factory=list, description="The regions the partner says it serves, as the directory shows them (R18)."
    )


class RegisteredPartner(BaseModel):
    partner: Partner = Field(description="The partner just registered.")
    api_key: IssuedApiKey = Field(description="The partner's first API key, with the key itself shown this once.")


class PartnerPage(BaseModel):
    items: list[Partner] = Field(description="Partners on this page, oldest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class StatusChangeRequest(RequestModel):
    model_config = request_examples(
        {"reason": "Agreement signed and checked"},
        {"reason": "The licence runs the partner's own production reports (R17)."},
    )

    reason: Reason = Field(
        examples=["Agreement signed and checked"],
        description="Why the partner's status changes; kept in its status history and the audit log.",
    )


class StatusChange(BaseModel):
    from_status: PartnerStatusName | None = Field(description="The status before; null for the partner's registration.")
    to_status: PartnerStatusName = Field(description="The status after.")
    effective_at: datetime = Field(description="When the change took effect.")
    reason: str = Field(description="Why, as the actor gave it.")
    actor: str = Field(
        description="Who made the change, as the audit log names callers (`admin:<key id>`, `partner:<partner "
        "id>`, `system`...)."
    )


class DeclaredIdentifier(BaseModel):
    kind: Literal["vat", "domain"] = Field(
        description="`vat` for a VAT id, `domain` for an e-mail domain of the partner's own company (R22)."
    )
    value: str = Field(description="Normalised as customers' identifiers are (R05).")
    declared_at: datetime = Field(description="When the partner declared it.")
    withdrawn_at: datetime | None = Field(
        description="When the partner stopped declaring it; null while it still does. A withdrawn value "
        "still counts as the partner's own company (R22)."
    )


class Standing(BaseModel):
    at: datetime = Field(description="The moment the standing is given for.")
    status: PartnerStatusName | None = Field(description="Null when the partner had not registered yet.")
    agreement_bound: bool = Field(
        description="Whether the partner had accepted an agreement version that still bound it at `at` (R04)."
    )
    required_agreement_version: str | None = Field(
        description="The agreement version in force at `at`; null when none had been published."
    )
    accepted_agreement_version: str | None = Field(
        description="The latest agreement version the partner had accepted by `at`; null when none."
    )
    eligible: bool = Field(description="R04: registered, active and bound by the agreement at `at`.")


class StatusChangeList(OnePage):
    items: list[StatusChange] = Field(description="The partner's status changes, oldest first.")


class DeclaredIdentifierList(OnePage):
    items: list[DeclaredIdentifier] = Field(description="Identifiers of the partner's own company (R22).")
