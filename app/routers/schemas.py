"""API schemas: what callers send and receive. Table models never leave the database layer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, StrictBool, StringConstraints

from app.routers.fields import (
    CountryCode,
    Label,
    LanguageCode,
    Name,
    Reason,
    UtcDatetime,
    VersionName,
)

PartnerStatusName = Literal["pending", "active", "suspended", "terminated"]
Email = Annotated[EmailStr, StringConstraints(max_length=320)]
Website = HttpUrl


class RequestModel(BaseModel):
    """Bodies our own clients send: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


# --- partners -----------------------------------------------------------------------------


class PartnerRegistration(RequestModel):
    company: Name = Field(examples=["Acme Analytics SARL"])
    country: CountryCode = Field(examples=["FR"])
    contact_name: Name = Field(examples=["Jeanne Martin"])
    contact_email: Email = Field(examples=["jeanne@acme-analytics.fr"])
    website: Website | None = Field(default=None, examples=["https://acme-analytics.fr"])
    languages: list[LanguageCode] = Field(default_factory=list, max_length=20, examples=[["fr", "en"]])
    accepted_agreement_version: VersionName = Field(
        description="The version of the partner agreement the partner accepts; must be the current one.",
        examples=["2026-01"],
    )


class PartnerProfileUpdate(RequestModel):
    company: Name | None = None
    country: CountryCode | None = None
    contact_name: Name | None = None
    contact_email: Email | None = None
    website: Website | None = None
    languages: list[LanguageCode] | None = Field(default=None, max_length=20)


class Partner(BaseModel):
    id: uuid.UUID
    company: str
    country: str
    contact_name: str
    contact_email: str
    website: str | None
    languages: list[str]
    status: PartnerStatusName
    created_at: datetime
    updated_at: datetime


class ApiKey(BaseModel):
    id: uuid.UUID
    kind: Literal["admin", "partner", "store"]
    partner_id: uuid.UUID | None
    name: str
    prefix: str = Field(description="The start of the key, to tell keys apart.")
    scopes: list[str]
    created_at: datetime
    created_by: str
    last_used_at: datetime | None = Field(description="Recorded at most once a minute.")
    revoked_at: datetime | None


class IssuedApiKey(ApiKey):
    key: str = Field(description="The key itself. It is shown this once and never again.")


class RegisteredPartner(BaseModel):
    partner: Partner
    api_key: IssuedApiKey


class PartnerPage(BaseModel):
    items: list[Partner]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class StatusChangeRequest(RequestModel):
    reason: Reason = Field(examples=["Agreement signed and checked"])


class StatusChange(BaseModel):
    from_status: PartnerStatusName | None
    to_status: PartnerStatusName
    effective_at: datetime
    reason: str
    actor: str


class Standing(BaseModel):
    at: datetime
    status: PartnerStatusName | None = Field(description="Null when the partner had not registered yet.")
    agreement_bound: bool
    required_agreement_version: str | None
    accepted_agreement_version: str | None
    eligible: bool = Field(description="R04: registered, active and bound by the agreement at `at`.")


# --- agreements ---------------------------------------------------------------------------


class AgreementPublication(RequestModel):
    version: VersionName = Field(examples=["2027-01"])
    title: Name = Field(examples=["Qalyptus Partner Program Agreement, 2027 edition"])
    url: Website | None = None
    accept_by: UtcDatetime = Field(
        description="Until then, acceptance of the previous version still binds a partner."
    )


class Agreement(BaseModel):
    version: str
    title: str
    url: str | None
    published_at: datetime
    accept_by: datetime


class AcceptanceRequest(RequestModel):
    version: VersionName


class AgreementAcceptance(BaseModel):
    version: str
    accepted_at: datetime


# --- keys ---------------------------------------------------------------------------------


class AdminKeyRequest(RequestModel):
    kind: Literal["admin", "store"] = "admin"
    name: Label = Field(examples=["finance dashboard"])
    scopes: list[Literal["read", "write", "store"]] | None = Field(
        default=None,
        max_length=3,
        description="Admin keys: `read` and/or `write` (default both). Store keys: `store`.",
    )


class PartnerKeyRequest(RequestModel):
    name: Label = Field(examples=["crm integration"])


# --- audit, program -----------------------------------------------------------------------


class AuditEvent(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, object] | None
    after: dict[str, object] | None
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None


class ProgramSettings(BaseModel):
    auto_approve: bool = Field(description="New partners become active at once when true.")
    updated_at: datetime


class ProgramSettingsUpdate(RequestModel):
    auto_approve: StrictBool | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable", "not_migrated"] | None = None
    schema_revision: str | None = None
    expected_revision: str | None = None
