"""API schemas — the program: audit trail, settings, health and the terms in force."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from app.domain.rules.numbers import WholeInt
from app.domain.rules.terms import POLICY_TERMS, Terms
from app.routers.fields import UtcDatetime
from app.routers.schemas.common import OnePage, RequestModel, Sku, request_examples


class AuditEvent(BaseModel):
    id: int = Field(description="The audit entry's id; entries sort by it.")
    occurred_at: datetime = Field(description="When the change was made.")
    actor: str = Field(
        description="Who made it (`admin:<key id>`, `partner:<partner id>`, `store:<key id>`, `system`...)."
    )
    action: str = Field(description="What was done, e.g. `partner.approved`.")
    object_type: str = Field(description="The kind of object changed, e.g. `partner`.")
    object_id: str = Field(description="The id of the object changed.")
    before: dict[str, object] | None = Field(
        description="The audited fields of the object before the change; null when it was created."
    )
    after: dict[str, object] | None = Field(
        description="The audited fields of the object after the change; null when it was removed."
    )
    request_id: str | None = Field(
        description="The `X-Request-ID` of the request that made the change; null when no request did (the worker)."
    )


class AuditPage(BaseModel):
    items: list[AuditEvent] = Field(description="Audit entries on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class ProgramSettings(BaseModel):
    auto_approve: bool = Field(description="New partners become active at once when true.")
    updated_at: datetime = Field(description="When the settings last changed.")


class ProgramSettingsUpdate(RequestModel):
    model_config = request_examples({"auto_approve": False})

    auto_approve: StrictBool | None = Field(
        default=None,
        description="True: new partners become active at once; false: an admin approves each. Omit to keep.",
    )


class Health(BaseModel):
    status: Literal["ok", "unavailable"] = Field(
        description="`ok` when the service can answer requests, `unavailable` when it cannot (see `database`)."
    )
    database: Literal["ok", "unreachable", "not_migrated", "schema_incompatible"] | None = Field(
        default=None,
        description="`not_migrated`: the database is behind this build (run `partners migrate`); "
        "`schema_incompatible`: it is at a later migration that does not declare this build compatible.",
    )
    schema_revision: str | None = Field(default=None, description="The database's migration revision.")
    expected_revision: str | None = Field(default=None, description="This build's latest migration revision.")
    oldest_compatible_revision: str | None = Field(
        default=None,
        description="When the database is at a revision this build does not know: the oldest application "
        "revision that revision declares compatible.",
    )
    detail: str | None = Field(default=None, description="Why, in a sentence, when the database is not simply current.")


class TermsVersion(BaseModel):
    version: int = Field(description="The terms version's number, from 1 (R21).")
    effective_from: datetime = Field(
        description="When it takes effect: orders placed from then on are evaluated under it."
    )
    terms: Terms = Field(description="The program's numbers in this version.")


class TermsInForce(TermsVersion):
    brand_assets_url: str | None = Field(
        description="Where partners find the vendor's brand assets (wordmark, logos) to use as they are; "
        "null when the service has not been told (PARTNERS_BRAND_ASSETS_URL).",
        examples=["https://www.dropbox.com/sh/qalyptus-brand-assets"],
    )


class TermsPublication(RequestModel):
    model_config = request_examples(
        {
            "effective_from": "2030-01-01T00:00:00Z",
            "terms": POLICY_TERMS.model_copy(update={"hold_days": 30, "time_zone": "Europe/Paris"}).model_dump(
                mode="json"
            ),
        }
    )

    effective_from: UtcDatetime = Field(description="A future moment; orders placed from then on use these terms.")
    terms: Terms = Field(
        description="The program's numbers from `effective_from` on (R01, R02, R06, R07, R10, R11, R16, R17, R19)."
    )


class SkuAddition(RequestModel):
    model_config = request_examples({"sku": "cloud-premium", "points": 6})

    sku: Sku = Field(
        examples=["cloud-premium"], description="The new SKU's name: letters, digits and . _ -, at most 64."
    )
    points: WholeInt = Field(
        ge=0, le=10_000, examples=[6], description="Points per licence of the SKU (R01), 0 to 10000."
    )


class SkuAdded(BaseModel):
    sku: str = Field(description="The SKU added.")
    points: int = Field(description="Its points per licence (R01).")
    amended_versions: list[int] = Field(
        description="The terms versions (in force or future) that now give the SKU its points."
    )


class TermsVersionList(OnePage):
    items: list[TermsVersion] = Field(description="Terms versions, oldest first.")
