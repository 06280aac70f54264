"""API schemas — aPI keys for partners, admins and services."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from app.routers.fields import Label
from app.routers.schemas.common import OnePage, RequestModel, request_examples


class _Key(BaseModel):
    id: uuid.UUID = Field(description="The API key's id (not the key itself).")
    kind: Literal["admin", "partner", "store"] = Field(
        description="Who the key speaks for: an `admin`, a `partner`, or the `store` sending order events."
    )
    partner_id: uuid.UUID | None = Field(
        description="The partner a `partner` key belongs to; null for admin and store keys."
    )
    name: str = Field(description="The label given to the key when it was issued.")
    prefix: str = Field(description="The start of the key, to tell keys apart.")
    scopes: list[str] = Field(
        description="What the key may do: `read` and/or `write` for admin keys, `store` for store keys, "
        "`partner` for partner keys."
    )
    created_at: datetime = Field(description="When the key was issued.")
    created_by: str = Field(
        description="Who issued it, as the audit log names callers (`admin:<key id>`, `partner:<partner id>`...)."
    )
    last_used_at: datetime | None = Field(description="Recorded at most once a minute.")
    revoked_at: datetime | None = Field(description="When the key was revoked; null while it works.")


class ApiKey(_Key):
    """A partner's key: it always belongs to the partner, so `partner_id` is never null."""

    partner_id: uuid.UUID = Field(description="The partner the key belongs to.")


class IssuedApiKey(ApiKey):
    key: str = Field(description="The key itself. It is shown this once and never again.")


class ServiceApiKey(_Key):
    """An admin or store key. It belongs to no partner: its `partner_id`, always null, is still sent but
    left out of this schema, so that no link (declared or inferred) reads a partner id from it."""

    partner_id: SkipJsonSchema[None] = None


class IssuedServiceApiKey(ServiceApiKey):
    """A new admin or store key, shown this once (`partner_id` as in `ServiceApiKey`)."""

    key: str = Field(description="The key itself. It is shown this once and never again.")


class AdminKeyRequest(RequestModel):
    model_config = request_examples(
        {"kind": "admin", "name": "finance dashboard", "scopes": ["read"]}, {"kind": "store", "name": "web store"}
    )

    kind: Literal["admin", "store"] = Field(
        default="admin",
        description="`admin` for a key of the vendor's staff, `store` for the key the store sends order events with.",
    )
    name: Label = Field(
        examples=["finance dashboard"], description="A label to tell the key apart in lists and the audit log."
    )
    scopes: list[Literal["read", "write", "store"]] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        description="Admin keys: `read` and/or `write` (default both). Store keys: `store`. At least one when given.",
    )


class PartnerKeyRequest(RequestModel):
    model_config = request_examples({"name": "crm integration"})

    name: Label = Field(
        examples=["crm integration"], description="A label to tell the key apart in lists and the audit log."
    )


class ApiKeyList(OnePage):
    items: list[ApiKey] = Field(description="The partner's keys; revoked ones too with `include_revoked`.")


class ServiceApiKeyList(OnePage):
    items: list[ServiceApiKey] = Field(description="The admin and store keys; revoked ones too with `include_revoked`.")
