"""API schemas: what callers send and receive. Table models never leave the database layer."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StrictBool,
    StringConstraints,
)
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from app.domain.events import CATALOGUE, partner_may_read
from app.domain.rules.numbers import NUMBER, WholeInt
from app.domain.rules.terms import POLICY_TERMS, Level, Terms
from app.domain.store_events import CURRENCY_PATTERN
from app.routers.fields import (
    TEXT_PATTERN,
    CountryCode,
    Label,
    LanguageCode,
    Name,
    Reason,
    UtcDatetime,
    VersionName,
    strip,
)

PartnerStatusName = Literal["pending", "active", "suspended", "terminated"]
_SPECIAL_USE = "|".join(
    "".join(f"[{c.upper()}{c}]" for c in name) for name in ("arpa", "invalid", "local", "localhost", "onion", "test")
)
Email = Annotated[
    EmailStr,
    StringConstraints(max_length=320),
    Field(json_schema_extra={"not": {"pattern": f"@(?:.*\\.)?(?:{_SPECIAL_USE})\\.?$"}}),
]
"""An e-mail address; domains reserved for special use (RFC 6761: `.test`, `.localhost`...) are refused."""


def _url_fits(url: HttpUrl) -> HttpUrl:
    # The length limit applies to the normalised form (percent-encoding lengthens it).
    if len(str(url)) > 2083:
        raise ValueError("is longer than 2083 characters once normalised")
    return url


Website = Annotated[HttpUrl, AfterValidator(_url_fits)]
VatId = Annotated[
    str, StringConstraints(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9 .\-]+$"), AfterValidator(strip)
]


def _examples(*examples: JsonDict) -> ConfigDict:
    """The config that shows a request body's examples in the OpenAPI document."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class RequestModel(BaseModel):
    """Bodies our own clients send: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


# --- partners -----------------------------------------------------------------------------


class PartnerRegistration(RequestModel):
    model_config = _examples(
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
        description="The partner's website: an http or https URL of at most 2083 characters once normalised.",
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
    model_config = _examples(
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
        default=None, description="A new website URL (at most 2083 characters once normalised); null removes it."
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
    vat_id: str | None = Field(
        default=None, description="The VAT id of the partner's own company (R22); null when it gave none."
    )
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


class ApiKey(BaseModel):
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


class IssuedApiKey(ApiKey):
    key: str = Field(description="The key itself. It is shown this once and never again.")


class ServiceApiKey(ApiKey):
    """An admin or store key. It belongs to no partner: its `partner_id`, always null, is still sent but
    left out of this schema, so that no link (declared or inferred) reads a partner id from it."""

    partner_id: SkipJsonSchema[None] = None


class IssuedServiceApiKey(IssuedApiKey):
    """A new admin or store key, shown this once (`partner_id` as in `ServiceApiKey`)."""

    partner_id: SkipJsonSchema[None] = None


class RegisteredPartner(BaseModel):
    partner: Partner = Field(description="The partner just registered.")
    api_key: IssuedApiKey = Field(description="The partner's first API key, with the key itself shown this once.")


class PartnerPage(BaseModel):
    items: list[Partner] = Field(description="Partners on this page, oldest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class StatusChangeRequest(RequestModel):
    model_config = _examples(
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


# --- agreements ---------------------------------------------------------------------------


class AgreementPublication(RequestModel):
    model_config = _examples(
        {
            "version": "2027-01",
            "title": "Qalyptus Partner Program Agreement, 2027 edition",
            "url": "https://partners.example.com/agreement/2027-01",
            "accept_by": "2027-03-31T23:59:59Z",
        }
    )

    version: VersionName = Field(
        examples=["2027-01"],
        description="The new agreement version's name: letters, digits and . _ -, starting with a letter or digit.",
    )
    title: Name = Field(
        examples=["Qalyptus Partner Program Agreement, 2027 edition"],
        description="The agreement's title, as partners see it.",
    )
    url: Website | None = Field(
        default=None,
        description="Where the agreement's text can be read: an http or https URL; null when there is none.",
    )
    accept_by: UtcDatetime = Field(description="Until then, acceptance of the previous version still binds a partner.")


class Agreement(BaseModel):
    version: str = Field(description="The agreement version's name.")
    title: str = Field(description="The agreement's title.")
    url: str | None = Field(description="Where its text can be read; null when none was given.")
    published_at: datetime = Field(description="When the version was published.")
    accept_by: datetime = Field(
        description="Until then, acceptance of the previous version still binds a partner (R04)."
    )


class AcceptanceRequest(RequestModel):
    model_config = _examples({"version": "2027-01"})

    version: VersionName = Field(description="The agreement version the partner accepts; must be the current one.")


class AgreementAcceptance(BaseModel):
    version: str = Field(description="The agreement version accepted.")
    accepted_at: datetime = Field(description="When the partner accepted it.")


# --- keys ---------------------------------------------------------------------------------


class AdminKeyRequest(RequestModel):
    model_config = _examples(
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
        max_length=3,
        description="Admin keys: `read` and/or `write` (default both). Store keys: `store`.",
    )


class PartnerKeyRequest(RequestModel):
    model_config = _examples({"name": "crm integration"})

    name: Label = Field(
        examples=["crm integration"], description="A label to tell the key apart in lists and the audit log."
    )


# --- audit, program -----------------------------------------------------------------------


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
    model_config = _examples({"auto_approve": False})

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


# --- program terms ----------------------------------------------------------------------------

Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


Currency = Annotated[
    str,
    StringConstraints(pattern=CURRENCY_PATTERN),
    Field(description="An ISO 4217 code of money (R23: not a fund, metal or test code such as XTS, XXX, XAU)."),
]
Money = Annotated[WholeInt, Field(ge=0, le=10**13)]


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
    model_config = _examples(
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
    model_config = _examples({"sku": "cloud-premium", "points": 6})

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


# --- customers and registrations -------------------------------------------------------------

Domain = Annotated[
    str,
    StringConstraints(min_length=3, max_length=253, pattern=r"^[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$"),
    AfterValidator(strip),
]
StoreCustomerId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"), AfterValidator(strip)
]


class RegistrationRequest(RequestModel):
    model_config = _examples(
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
    model_config = _examples(
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
    model_config = _examples(
        {"until": "2027-06-30T00:00:00Z", "reason": "Our own sales team is negotiating an enterprise deal."}
    )

    until: UtcDatetime = Field(
        description="Until when registrations of the customer are refused because the vendor sells to it itself (R06)."
    )
    reason: Reason = Field(description="Why; shown to partners whose registration is refused.")


# --- ledgers and status ----------------------------------------------------------------------


class PartnerStatus(BaseModel):
    partner_id: uuid.UUID = Field(description="The partner's id.")
    level: Level = Field(description="The partner's level now, from its active points (R02).")
    active_points: int = Field(description="The sum of the partner's points entries (R03).")
    next_level: Level | None = Field(description="The next level up; null at Platinum.")
    points_to_next_level: int | None = Field(description="Points still needed to reach `next_level`; null at Platinum.")
    discount_rate_bp: int = Field(description="R12: resale discount now, basis points (2000 = 20 %).")
    lifetime_commission_rate_bp: int = Field(description="R13: rate on direct purchases of resale customers.")
    referral_rate_bp: int = Field(description="R11: referral commission rate, basis points (2000 = 20 %).")
    points_at_risk: int = Field(description="Points of licences whose term ends before `at_risk_until`.")
    at_risk_until: datetime = Field(
        description="The end of the window `points_at_risk` counts: now plus the terms' `points_at_risk_days`."
    )
    commission_balances: dict[str, int] = Field(description="Minor units per ISO 4217 currency.")
    terms_version: int = Field(description="The terms version in force now, which gave these rates (R21).")


class PointsEntry(BaseModel):
    id: int = Field(description="The points entry's id; entries sort by it.")
    points: int = Field(description="Points credited, or taken away when negative (R03, R10, R14).")
    effective_at: datetime = Field(
        description="When the entry counts from: an order's `placed_at`, a refund's `refunded_at`, a lapse's date "
        "(`term_end` plus grace, R10), or the moment of an adjustment."
    )
    recorded_at: datetime = Field(description="When the service recorded it.")
    rule: str = Field(description="The program rule that made it, e.g. R09.")
    explanation: str = Field(description="Why, in a sentence (R21).")
    order_id: str | None = Field(description="The store order it comes from; null when none (an adjustment).")
    order_line_id: int | None = Field(description="The order line it comes from; null when none.")
    licence_id: str | None = Field(description="The licence whose sale or lapse made it; null when none.")
    terms_version: int = Field(description="The terms version it was computed under (R21).")


class MoneyEntry(BaseModel):
    id: int = Field(description="The money entry's id; entries sort by it.")
    currency: str = Field(description="The entry's ISO 4217 currency (R15).")
    amount: int = Field(description="Minor units; negative for reversals.")
    effective_at: datetime = Field(
        description="When it counts from; its quarter, in the terms' time zone, is the statement it goes on (R16)."
    )
    recorded_at: datetime = Field(description="When the service recorded it.")
    rule: str = Field(description="The program rule that made it, e.g. R11, R13, R14.")
    explanation: str = Field(description="Why, in a sentence (R21).")
    order_id: str | None = Field(description="The store order it comes from; null for an adjustment.")
    order_line_id: int | None = Field(description="The order line it comes from; null when none.")
    rate_bp: int | None = Field(description="The rate applied to `base_amount`, basis points; null for an adjustment.")
    base_amount: int | None = Field(
        description="The amount the rate applied to, minor units, tax excluded (R23); null for an adjustment."
    )
    terms_version: int = Field(description="The terms version it was computed under (R21).")


class PointsEntryPage(BaseModel):
    items: list[PointsEntry] = Field(description="Points entries on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class MoneyEntryPage(BaseModel):
    items: list[MoneyEntry] = Field(description="Money entries on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class LevelChange(BaseModel):
    from_level: Level = Field(description="The level before.")
    to_level: Level = Field(description="The level after.")
    points_after: int = Field(description="The partner's active points right after the change (R02, R03).")
    changed_at: datetime = Field(description="When the change took effect.")
    points_entry_id: int | None = Field(description="The entry that caused the change; null when new terms did.")
    terms_version: int | None = Field(
        default=None, description="The terms version whose taking effect caused the change (R03)."
    )


class Relationship(BaseModel):
    customer_id: uuid.UUID = Field(description="The customer.")
    company: str = Field(description="The customer's legal name.")
    mode: Literal["referral", "resale"] = Field(
        description="`referral`: the customer buys itself and the partner earns R11 commission; `resale`: the "
        "partner buys for it (R12, R13)."
    )
    first_order_at: datetime = Field(description="When the customer's first qualifying order was placed.")
    established_by_order_id: str = Field(description="The store order that established the relationship (R08).")
    resale_since: datetime | None = Field(
        description="When a resale order first made it a resale relationship; null for a referral one."
    )
    ended_at: datetime | None = Field(
        description="When it ended: the partner was terminated (R04); null while it holds."
    )


# --- webhooks and pricing --------------------------------------------------------------------


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
    model_config = _examples(
        {"reason": "Checked with the store: the partner bought for a subsidiary with its own VAT id."}
    )

    reason: Reason = Field(
        examples=["Checked with the store: the partner bought for a subsidiary with its own VAT id."],
        description="How the flag was resolved; kept with it and in the audit log.",
    )


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


class ReasonRequest(RequestModel):
    model_config = _examples(
        {"reason": 'The text spells the brand "QAlyptus" (R20).'},
        {"reason": "The partner corrected its listing."},
    )

    reason: Reason = Field(description="Why; kept in the audit log and shown to the partner where it applies.")


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
    model_config = _examples(
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
        "`partner_not_active`, `agreement_not_accepted`, `customer_ambiguous`, `nfr_licence`, `own_company` (R22)."
    )
    terms_version: int = Field(description="The terms version in force, which gave the rate (R21).")


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


# --- statements, payouts, adjustments, dashboards --------------------------------------------

QuarterName = Annotated[str, StringConstraints(pattern=r"^(19|2\d)\d\d-Q[1-4]$")]
StatementStatusName = Literal["draft", "approved", "paid"]


class StatementLineOut(BaseModel):
    money_entry_id: int = Field(description="The money entry on the statement.")
    effective_at: datetime = Field(description="When the entry counts from.")
    order_id: str | None = Field(description="The store order it comes from; null for an adjustment.")
    customer: str | None = Field(description="The customer's name; null when none.")
    rule: str = Field(description="The program rule that made the entry, e.g. R11.")
    amount: int = Field(description="The entry's amount, minor units; negative for a reversal.")
    label: str | None = Field(description="Why the entry is here rather than in its own quarter.")
    explanation: str = Field(description="Why, in a sentence (R21).")


class StatementOut(BaseModel):
    id: uuid.UUID = Field(description="The statement's id.")
    partner_id: uuid.UUID = Field(description="The partner paid.")
    quarter: str = Field(description="The calendar quarter it covers, e.g. `2026-Q1`, in the terms' time zone (R16).")
    currency: str = Field(description="The statement's ISO 4217 currency; one statement per currency.")
    status: StatementStatusName = Field(description="`draft` when closed, `approved` by an admin, then `paid` (R16).")
    opening_balance: int = Field(description="A negative total carried from the previous statement.")
    lines_total: int = Field(description="The sum of the lines, minor units.")
    closing_balance: int = Field(
        description="`opening_balance` plus `lines_total`, minor units; carried forward when negative."
    )
    payable_amount: int = Field(description="Paid on `payout_date`; 0 when the closing balance is negative.")
    payout_date: date = Field(description="When it is due: the 25th of the month after its quarter (R16).")
    created_at: datetime = Field(description="When the quarter close made it.")
    approved_at: datetime | None = Field(description="When an admin approved it; null until then.")
    paid_at: datetime | None = Field(description="When it was marked paid; null until then.")
    payment_reference: str | None = Field(
        description="The bank transfer's reference, as the admin gave it; null until paid."
    )
    lines: list[StatementLineOut] | None = Field(
        default=None, description="The entries on it; null when the list leaves them out."
    )


class QuarterCloseOut(BaseModel):
    quarter: str = Field(description="The quarter closed, e.g. `2026-Q1`.")
    closed_now: bool = Field(description="False when the quarter had been closed before: nothing changed.")
    statements: list[StatementOut] = Field(
        description="The statements the close made (or had made), one per partner and currency."
    )


class QuarterOut(BaseModel):
    quarter: str = Field(description="The quarter, e.g. `2026-Q1`.")
    time_zone: str = Field(description="The IANA time zone the quarter was counted in (the terms').")
    cutoff: datetime = Field(description="The quarter's end: entries effective before it are on its statements.")
    closed_at: datetime = Field(description="When it was closed.")
    closed_by: str = Field(description="Who closed it (`admin:<key id>` or `system`).")
    statements: int = Field(description="How many statements the close made.")


class Payment(RequestModel):
    model_config = _examples({"payment_reference": "SEPA-2026-Q1-0042", "paid_on": "2026-05-02"})

    payment_reference: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$"), AfterValidator(strip)
    ] = Field(description="The bank transfer's reference: printable ASCII, 1 to 200 characters.")
    paid_on: date | None = Field(default=None, description="Default: today.")


class StatementPayment(Payment):
    model_config = _examples(
        {"statement_id": "5f0c2d4e-8a1b-4c3d-9e7f-1a2b3c4d5e6f", "payment_reference": "SEPA-2026-Q1-0042"}
    )

    statement_id: uuid.UUID = Field(description="The statement paid.")


class BulkApproval(RequestModel):
    model_config = _examples(
        {"statement_ids": ["5f0c2d4e-8a1b-4c3d-9e7f-1a2b3c4d5e6f", "6a1d3e5f-9b2c-4d4e-8f80-2b3c4d5e6f70"]}
    )

    statement_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=10_000, description="The draft statements to approve, 1 to 10000."
    )


class BulkPayment(RequestModel):
    model_config = _examples(
        {
            "payments": [
                {
                    "statement_id": "5f0c2d4e-8a1b-4c3d-9e7f-1a2b3c4d5e6f",
                    "payment_reference": "SEPA-2026-Q1-0042",
                    "paid_on": "2026-05-02",
                }
            ]
        }
    )

    payments: list[StatementPayment] = Field(
        min_length=1,
        max_length=10_000,
        description="The approved statements to mark paid, with their references, 1 to 10000.",
    )


class Adjustment(RequestModel):
    model_config = _examples(
        {
            "kind": "money",
            "amount": 2500,
            "currency": "EUR",
            "reason": "Commission on an order the store reported without the partner.",
        },
        {"kind": "points", "amount": -4, "reason": "Licence returned outside the store; its points are taken back."},
    )

    kind: Literal["points", "money"] = Field(
        description="`points` to adjust active points (R03), `money` to adjust commission."
    )
    amount: WholeInt = Field(
        ge=-(10**9),
        le=10**9,
        description="Points, or minor units; negative to take away. Never 0.",
        json_schema_extra={"not": {"const": 0}},
    )
    currency: Currency | None = Field(
        default=None, description="For `money`: the ISO 4217 currency; omit for `points`."
    )
    reason: Reason = Field(description="Why; kept on the entry as its explanation and in the audit log.")


class AdjustmentOut(BaseModel):
    kind: Literal["points", "money"] = Field(description="`points` or `money`.")
    entry_id: int = Field(description="The points or money entry made.")
    amount: int = Field(description="Points, or minor units of `currency`.")
    currency: str | None = Field(description="For `money`: the ISO 4217 currency; null for points.")
    effective_at: datetime = Field(description="When the entry counts from: now.")


class PayoutForecast(BaseModel):
    currency: str = Field(description="The ISO 4217 currency.")
    payout_date: date = Field(
        description="The next payout date: that of the earliest unpaid statement with something to pay, else the open "
        "quarter's (R16)."
    )
    expected_amount: int = Field(
        description="What `payout_date` is expected to pay, minor units: the unpaid statements' payable amounts, "
        "or what the open quarter accrues after a negative balance carried."
    )
    unpaid_statements: list[uuid.UUID] = Field(
        description="The partner's statements in this currency not yet paid, draft or approved."
    )
    accruing: int = Field(description="Entries not yet on a statement (the open quarter).")


class Count(BaseModel):
    key: str = Field(description="What is counted, e.g. a band of points (`1-159`).")
    count: int = Field(description="How many.")


class QuarterMoney(BaseModel):
    quarter: str = Field(description="The quarter, e.g. `2026-Q1`.")
    currency: str = Field(description="The ISO 4217 currency.")
    accrued: int = Field(description="Commission entries effective in the quarter, minor units.")
    payable: int = Field(description="On approved statements not yet paid.")
    paid: int = Field(description="On statements marked paid, minor units.")


class TopPartner(BaseModel):
    partner_id: uuid.UUID = Field(description="The partner's id.")
    company: str = Field(description="The partner's company name.")
    value: int = Field(description="Active points, or commission in minor units of `currency`.")
    currency: str | None = Field(default=None, description="For commission: the ISO 4217 currency; null for points.")


class ProgramOverview(BaseModel):
    partners_by_level: dict[str, int] = Field(
        description="Active partners by level; one without any entry yet is an Affiliate."
    )
    partners_by_status: dict[str, int] = Field(
        description="Partners by status (`pending`, `active`, `suspended`, `terminated`)."
    )
    points_distribution: list[Count] = Field(
        description="The same active partners by band of points, the bands following the level thresholds of the "
        "terms in force (`0`, `1-159`, ...); one without any entry yet is in `0`, and a band `negative` comes first "
        "when an adjustment took a balance below 0. The counts add up to those of `partners_by_level`."
    )
    commissions: list[QuarterMoney] = Field(description="Commission by quarter and currency, in the `from`/`to` range.")
    registrations_by_state: dict[str, int] = Field(
        description="Registrations by state (`live`, `converted`, `expired`...) in the range."
    )
    refusals_by_reason: dict[str, int] = Field(description="Registration refusals by code in the range.")
    parked_webhook_events: dict[str, int] = Field(description="Store events parked, by reason code.")
    discount_mismatches: int = Field(description="Discount mismatches recorded in the range (R12).")
    order_flags: dict[str, int] = Field(
        description="Unresolved order flags by kind: `discount_mismatch`, `nfr_resale`, `own_company`, "
        "`relationship_conflict`."
    )
    overdue_statements: int = Field(
        description="Statements not marked paid by their payout date, drafts and approved ones (R16), whatever "
        "`from`/`to`."
    )
    overdue_quarters: int = Field(
        description="Quarters holding payable entries and still not closed after their payout date (R16, listed "
        "by `GET /v1/quarters/overdue`), whatever `from`/`to`."
    )
    top_partners_by_points: list[TopPartner] = Field(description="The partners with the most active points.")
    top_partners_by_commission: list[TopPartner] = Field(
        description="The partners with the most commission in the range, per currency."
    )
    authentication_refusals: dict[str, int] = Field(
        description="Requests refused over the last 30 days (not filtered by `from`/`to`): `failed` for a wrong "
        "or missing API key, `throttled` for a 429 to an address past the limit of failures per minute."
    )


# --- directory and not-for-resale licences ---------------------------------------------------

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False), NUMBER]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False), NUMBER]

ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"), AfterValidator(strip)
]
Description = Annotated[str, StringConstraints(max_length=2000, pattern=TEXT_PATTERN), AfterValidator(strip)]


class DirectoryProfileUpdate(RequestModel):
    """Null empties a field, but for the lists (emptied with `[]`) and `listed`."""

    model_config = _examples(
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
    model_config = _examples({"sku": "server-business", "purpose": "demonstration", "acknowledged": True})

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


# --- leads -----------------------------------------------------------------------------------


class LeadCreate(RequestModel):
    model_config = _examples(
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
    model_config = _examples({"partner_id": "0b6f5a3e-4c1d-4e8a-9f2b-7d3c1a5e9b10"}, {})

    partner_id: uuid.UUID | None = Field(default=None, description="Default: the best-ranked partner not tried yet.")


class OfferDecline(RequestModel):
    model_config = _examples({"reason": "We have no consultant free in that region this quarter."})

    reason: Reason | None = Field(default=None, description="Why the partner declines; optional.")


# --- domain events and jobs --------------------------------------------------------------------


class DomainEvent(BaseModel):
    id: int = Field(description="Increasing: events sort by id.")
    type: str = Field(
        description="`noun.past_verb`; each type's payload schema, with an example, is "
        "`components/schemas/EventPayload.<type>`."
    )
    occurred_at: datetime = Field(description="When it happened.")
    recorded_at: datetime = Field(description="When the service recorded it.")
    partner_id: uuid.UUID | None = Field(description="The partner it concerns; null for a program-wide event.")
    subject: str = Field(description="The main object, e.g. `registration:<id>`.")
    refs: dict[str, str] = Field(description="Other ids it concerns, by name.")
    version: int = Field(description="Version of this type's payload schema.")
    payload: dict[str, object] = Field(description="The type's payload: `components/schemas/EventPayload.<type>`.")


class DomainEventPage(BaseModel):
    items: list[DomainEvent] = Field(description="Domain events on this page, by increasing id.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class Job(BaseModel):
    name: str = Field(description="The job's name.")
    description: str = Field(description="What it does, in a sentence.")
    every_seconds: int = Field(description="How often it runs, seconds.")
    next_run_at: datetime = Field(description="When it runs next.")
    last_started_at: datetime | None = Field(description="When its last run started; null before the first.")
    last_finished_at: datetime | None = Field(description="When its last run finished; null before the first.")
    last_outcome: Literal["ok", "failed"] | None = Field(description="`ok` or `failed`; null before the first run.")
    last_counts: dict[str, int] = Field(description="What its last run did, by name (e.g. `expired`: 3).")
    last_error: str | None = Field(description="Why its last run failed; null otherwise.")
    runs: int = Field(description="How many times it has run.")


class StoreEventApplier(BaseModel):
    accepted: int = Field(description="Store events waiting to be applied.")
    oldest_accepted_at: datetime | None = Field(description="When the oldest of them arrived (the worker's lag).")
    holder: str | None = Field(description="The worker holding the applier's lease, if any.")
    lease_expires_at: datetime | None = Field(description="When that lease ends unless renewed; null when none.")


class WorkerApplier(BaseModel):
    """Whether this build's workers apply store events and run jobs on the database as it stands."""

    state: Literal["running", "paused"] = Field(
        description="`paused`: the schema does not fit this build, so its workers apply nothing (see `reason`)."
    )
    reason: Literal["not_migrated", "schema_incompatible"] | None = Field(
        description="`not_migrated`: the database is behind this build; `schema_incompatible`: it is at a later "
        "migration that does not declare this build compatible. Null while running."
    )
    detail: str | None = Field(description="Why, in a sentence, when paused or when the database is ahead.")
    schema_revision: str | None = Field(description="The database's migration revision.")
    build_revision: str = Field(description="This build's latest migration revision.")
    oldest_compatible_revision: str | None = Field(
        description="When the database is ahead: the oldest application revision its revision declares compatible."
    )


class JobList(BaseModel):
    items: list[Job] = Field(description="The worker's jobs.")
    next_cursor: str | None = Field(description="Always null: every job fits on one page.")
    has_more: bool = Field(description="Always false: every job fits on one page.")
    store_events: StoreEventApplier = Field(description="The applier of store events: its backlog and lease.")
    applier: WorkerApplier = Field(description="Whether this build's workers run on the database as it stands.")


# --- the list shape: every admin and partner list answers `items`, `next_cursor`, `has_more` -------


class _OnePage(BaseModel):
    """A list that always fits on one page: the shape of every list, with nothing more to fetch."""

    next_cursor: str | None = Field(default=None, description="Always null: the whole list is on this page.")
    has_more: bool = Field(default=False, description="Always false: the whole list is on this page.")


class ApiKeyList(_OnePage):
    items: list[ApiKey] = Field(description="API keys.")


class ServiceApiKeyList(_OnePage):
    items: list[ServiceApiKey] = Field(description="The admin and store keys; revoked ones too with `include_revoked`.")


class AgreementList(_OnePage):
    items: list[Agreement] = Field(description="Agreement versions, oldest first.")


class AgreementAcceptanceList(_OnePage):
    items: list[AgreementAcceptance] = Field(description="The partner's acceptances, oldest first.")


class StatusChangeList(_OnePage):
    items: list[StatusChange] = Field(description="The partner's status changes, oldest first.")


class DeclaredIdentifierList(_OnePage):
    items: list[DeclaredIdentifier] = Field(description="Identifiers of the partner's own company (R22).")


class RegistrationList(_OnePage):
    items: list[Registration] = Field(description="The partner's registrations.")


class LevelChangeList(_OnePage):
    items: list[LevelChange] = Field(description="The partner's level changes, oldest first.")


class RelationshipList(_OnePage):
    items: list[Relationship] = Field(description="The partner's customer relationships.")


class TermsVersionList(_OnePage):
    items: list[TermsVersion] = Field(description="Terms versions, oldest first.")


class QuarterList(_OnePage):
    items: list[QuarterOut] = Field(description="Closed quarters.")


class StatementList(_OnePage):
    items: list[StatementOut] = Field(description="Statements.")


class PayoutForecastList(_OnePage):
    items: list[PayoutForecast] = Field(description="Payout forecasts, one per currency.")


class NfrLicenceList(_OnePage):
    items: list[NfrLicenceOut] = Field(description="Not-for-resale licences.")


class NfrViolationList(_OnePage):
    items: list[NfrViolationOut] = Field(description="Not-for-resale licences seen sold or quoted (R17).")


class LeadOfferList(_OnePage):
    items: list[LeadOfferOut] = Field(description="Lead offers.")


class OverdueQuarter(BaseModel):
    quarter: str = Field(description="The quarter, e.g. `2026-Q1`.")
    partner_id: uuid.UUID = Field(description="The partner's id.")
    company: str = Field(description="The partner's company name.")
    currency: str = Field(description="The ISO 4217 currency.")
    entries: int = Field(description="Payable money entries of the partner that the quarter's statement would take.")
    opening_balance: int = Field(description="A negative total carried from the partner's last statement.")
    entries_total: int = Field(description="The sum of those entries, minor units.")
    payable_amount: int = Field(description="What the statement would pay if the quarter were closed now (0 or more).")
    payout_date: date = Field(description="The quarter's payout date, passed.")


class OverdueQuarterPage(BaseModel):
    items: list[OverdueQuarter] = Field(description="Overdue quarters, per partner and currency, on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class StatementSearch(BaseModel):
    items: list[StatementOut] = Field(description="The statements that match, at most `limit`.")
    next_cursor: str | None = Field(default=None, description="Always null: narrow the filters or raise `limit`.")
    has_more: bool = Field(description="Whether more statements match than `limit`.")


class DiscountMismatchPage(BaseModel):
    items: list[DiscountMismatch] = Field(description="Discount mismatches on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


# --- outbound webhooks ---------------------------------------------------------------------------

EventTypeName = Annotated[str, Field(json_schema_extra={"enum": sorted(CATALOGUE)})]
"""An event type of the catalogue; others are refused with `unknown_event_type`."""
PartnerEventTypeName = Annotated[
    str, Field(json_schema_extra={"enum": sorted(t for t in CATALOGUE if partner_may_read(t))})
]
"""An event type a partner may read; others are refused with `event_type_not_for_partners`."""
SubscriptionEventTypes = Annotated[
    list[EventTypeName],
    Field(
        min_length=1,
        max_length=50,
        description="Event types to receive (the catalogue: `GET /v1/events` types, README). "
        "A partner's subscription takes only the types a partner may read.",
        examples=[["partner.approved", "lead.offered"]],
    ),
]
PartnerSubscriptionEventTypes = Annotated[
    list[PartnerEventTypeName],
    Field(
        min_length=1,
        max_length=50,
        description="Event types to receive: those a partner may read (the catalogue: `GET /v1/events` types, README).",
        examples=[["partner.approved", "lead.offered"]],
    ),
]
TargetUrl = Annotated[
    str,
    StringConstraints(
        min_length=8,
        max_length=2083,
        pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]",
    ),
    Field(
        description="Where deliveries are POSTed: an absolute URL without user name or password. In production "
        "it must be `https` (else `webhook_target_not_https`) and its host must resolve only to globally routable "
        "addresses (else `webhook_target_not_global`); `http` is taken only where the deployment allows private "
        "targets (PARTNERS_OUTBOUND_ALLOW_PRIVATE, on by default outside production).",
        examples=["https://crm.example.com/hooks/qalyptus"],
    ),
]
SubscriptionDescription = Annotated[str, StringConstraints(max_length=500, pattern=TEXT_PATTERN)]


class WebhookSubscriptionCreate(RequestModel):
    model_config = _examples(
        {
            "url": "https://crm.example.com/hooks/qalyptus",
            "event_types": ["partner.approved", "lead.offered"],
            "description": "CRM sync",
        }
    )

    url: TargetUrl
    event_types: SubscriptionEventTypes
    partner_id: uuid.UUID | None = Field(
        default=None, description="Admins: only this partner's events. Ignored under a partner's route."
    )
    description: SubscriptionDescription | None = Field(
        default=None, description="A note to tell the subscription apart, at most 500 characters."
    )


class PartnerWebhookSubscriptionCreate(RequestModel):
    model_config = _examples(
        {"url": "https://crm.example.com/hooks/qalyptus", "event_types": ["lead.offered"], "description": "CRM sync"}
    )

    url: TargetUrl
    event_types: PartnerSubscriptionEventTypes
    description: SubscriptionDescription | None = Field(
        default=None, description="A note to tell the subscription apart, at most 500 characters."
    )


class WebhookSubscriptionUpdate(RequestModel):
    model_config = _examples({"enabled": True}, {"event_types": ["partner.approved", "lead.offered"]})

    url: TargetUrl | None = Field(default=None, description="A new target URL; omit to keep.")
    event_types: SubscriptionEventTypes | None = Field(
        default=None, description="The event types to receive, replacing the current ones; omit to keep."
    )
    enabled: StrictBool | None = Field(
        default=None, description="`true` re-enables: events from then on are sent (not those missed)."
    )
    description: SubscriptionDescription | None = Field(
        default=None, description="A new note, at most 500 characters; omit to keep."
    )


class PartnerWebhookSubscriptionUpdate(RequestModel):
    model_config = _examples({"enabled": True}, {"url": "https://crm.example.com/hooks/qalyptus-v2"})

    url: TargetUrl | None = Field(default=None, description="A new target URL; omit to keep.")
    event_types: PartnerSubscriptionEventTypes | None = Field(
        default=None,
        description="The event types to receive, replacing the current ones (those a partner may read); omit to keep.",
    )
    enabled: StrictBool | None = Field(
        default=None, description="`true` re-enables: events from then on are sent (not those missed)."
    )
    description: SubscriptionDescription | None = Field(
        default=None, description="A new note, at most 500 characters; omit to keep."
    )


class WebhookSubscription(BaseModel):
    id: uuid.UUID = Field(description="The subscription's id.")
    owner: Literal["admin", "partner"] = Field(description="Who made it: an admin, or the partner for itself.")
    partner_id: uuid.UUID | None = Field(
        description="The partner whose events it receives; null for an admin's subscription to all."
    )
    url: str = Field(description="Where deliveries are POSTed.")
    event_types: list[str] = Field(description="The event types it receives.")
    description: str | None = Field(description="Its note; null when none.")
    enabled: bool = Field(description="Whether deliveries are sent.")
    disabled_reason: str | None = Field(
        description="Why it was disabled (`disabled by <actor>`, or every delivery failing for 5 days); null "
        "while enabled."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, until when the previous secret also signs."
    )
    created_at: datetime = Field(description="When it was made.")
    updated_at: datetime = Field(description="When it last changed.")


class WebhookSubscriptionWithSecret(WebhookSubscription):
    secret: str = Field(
        description="The signing secret (`whsec_` + base64), shown only now: verify deliveries with it.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookSubscriptionPage(BaseModel):
    items: list[WebhookSubscription] = Field(description="Subscriptions on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class WebhookAttempt(BaseModel):
    attempted_at: datetime = Field(description="When the attempt was made.")
    status_code: int | None = Field(description="The target's HTTP status; null when no answer came.")
    latency_ms: int = Field(description="How long the target took to answer, milliseconds.")
    error: str | None = Field(description="Why it failed: a non-2xx answer, a timeout, a refused target...")
    response_body: str | None = Field(description="The first 1 KiB of the answer.")


class WebhookDelivery(BaseModel):
    id: int = Field(description="The delivery's id.")
    subscription_id: uuid.UUID = Field(description="The subscription it is for.")
    event_id: int | None = Field(description="The domain event sent; null for a `ping`.")
    event_type: str = Field(description="The event type sent, or `ping`.")
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    status: Literal["pending", "sending", "delivered", "failed"] = Field(
        description="`pending`, `sending`, `delivered` (a 2xx answer), or `failed` after the last retry."
    )
    attempt_count: int = Field(description="Attempts made so far.")
    next_attempt_at: datetime | None = Field(description="When the next attempt is due; null when none is.")
    created_at: datetime = Field(description="When the delivery was queued.")
    delivered_at: datetime | None = Field(description="When a 2xx answer came; null until then.")
    attempts: list[WebhookAttempt] = Field(description="Each attempt, oldest first.")


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDelivery] = Field(description="Deliveries on this page, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")
