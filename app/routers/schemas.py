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
    UrlConstraints,
)
from pydantic.json_schema import SkipJsonSchema

from app.domain.events import CATALOGUE, partner_may_read
from app.domain.rules.numbers import NUMBER, WholeInt
from app.domain.rules.terms import Level, Terms
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


URL_MAX_LENGTH = 2083 // 3
"""The longest URL taken as sent: normalising percent-encodes a character into three at most (and adds
a `/` to a bare host), so any URL of the document's format this long still fits the 2083 characters
stored."""
Website = Annotated[HttpUrl, UrlConstraints(max_length=URL_MAX_LENGTH), AfterValidator(_url_fits)]
VatId = Annotated[
    str, StringConstraints(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9 .\-]+$"), AfterValidator(strip)
]


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
    vat_id: VatId | None = Field(
        default=None,
        description="The company's VAT id, checked against its country's rules; it identifies the partner's own "
        "company, which can never be its customer (R22).",
        examples=["FR40303265045"],
    )
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
    vat_id: VatId | None = None
    languages: list[LanguageCode] | None = Field(default=None, max_length=20)


class Partner(BaseModel):
    id: uuid.UUID
    company: str
    country: str
    contact_name: str
    contact_email: str
    website: str | None
    vat_id: str | None = None
    languages: list[str]
    status: PartnerStatusName
    created_at: datetime
    updated_at: datetime
    region: str | None = None
    listed: bool = True
    description: str | None = None
    services: list[str] = Field(default_factory=list)
    published_description: str | None = Field(
        default=None, description="The description the directory shows: the last one an admin approved (R18)."
    )
    published_services: list[str] = Field(default_factory=list)
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
    regions_served: list[str] = Field(default_factory=list)


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


class ServiceApiKey(ApiKey):
    """An admin or store key. It belongs to no partner: its `partner_id`, always null, is still sent but
    left out of this schema, so that no link (declared or inferred) reads a partner id from it."""

    partner_id: SkipJsonSchema[None] = None


class IssuedServiceApiKey(IssuedApiKey):
    """A new admin or store key, shown this once (`partner_id` as in `ServiceApiKey`)."""

    partner_id: SkipJsonSchema[None] = None


class RegisteredPartner(BaseModel):
    partner: Partner
    api_key: IssuedApiKey


class PartnerPage(BaseModel):
    items: list[Partner]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class StatusChangeRequest(RequestModel):
    reason: Reason = Field(examples=["Agreement signed and checked"])


class StatusChange(BaseModel):
    from_status: PartnerStatusName | None
    to_status: PartnerStatusName
    effective_at: datetime
    reason: str
    actor: str


class DeclaredIdentifier(BaseModel):
    kind: Literal["vat", "domain"]
    value: str = Field(description="Normalised as customers' identifiers are (R05).")
    declared_at: datetime
    withdrawn_at: datetime | None = Field(
        description="When the partner stopped declaring it; null while it still does. A withdrawn value "
        "still counts as the partner's own company (R22)."
    )


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
    accept_by: UtcDatetime = Field(description="Until then, acceptance of the previous version still binds a partner.")


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
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class ProgramSettings(BaseModel):
    auto_approve: bool = Field(description="New partners become active at once when true.")
    updated_at: datetime


class ProgramSettingsUpdate(RequestModel):
    auto_approve: StrictBool | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
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
    version: int
    effective_from: datetime
    terms: Terms


class TermsInForce(TermsVersion):
    brand_assets_url: str | None = Field(
        description="Where partners find the vendor's brand assets (wordmark, logos) to use as they are; "
        "null when the service has not been told (PARTNERS_BRAND_ASSETS_URL).",
        examples=["https://www.dropbox.com/sh/qalyptus-brand-assets"],
    )


class TermsPublication(RequestModel):
    effective_from: UtcDatetime = Field(description="A future moment; orders placed from then on use these terms.")
    terms: Terms


class SkuAddition(RequestModel):
    sku: Sku = Field(examples=["cloud-premium"])
    points: WholeInt = Field(ge=0, le=10_000, examples=[6])


class SkuAdded(BaseModel):
    sku: str
    points: int
    amended_versions: list[int]


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
    company: Name = Field(description="The customer's legal name.", examples=["Contoso SA"])
    country: CountryCode = Field(examples=["FR"])
    contact_name: Name = Field(examples=["Marie Curie"])
    contact_email: Email = Field(examples=["marie@contoso.example"])
    vat_id: VatId | None = Field(default=None, examples=["FR40303265045"])
    domain: Domain | None = Field(
        default=None, description="The company's own e-mail domain.", examples=["contoso.example"]
    )
    store_customer_id: StoreCustomerId | None = None


RegistrationStateName = Literal["live", "offered", "converted", "expired", "withdrawn"]


class Registration(BaseModel):
    id: uuid.UUID
    partner_id: uuid.UUID
    customer_id: uuid.UUID
    state: RegistrationStateName
    registered_at: datetime
    expires_at: datetime
    days_left: int = Field(description="Whole days until the window ends (0 once it is not live).")
    company: str
    country: str
    contact_name: str
    contact_email: str
    vat_id: str | None
    domain: str | None
    store_customer_id: str | None
    terms_version: int
    converted_order_id: str | None


class CustomerImportRow(RequestModel):
    company: Name
    country: CountryCode
    vat_id: VatId | None = None
    domain: Domain | None = None
    store_customer_id: StoreCustomerId | None = None


class CustomerImport(RequestModel):
    customers: list[CustomerImportRow] = Field(min_length=1, max_length=10_000)


class ImportError_(BaseModel):
    row: int
    detail: str


class CustomerImportResult(BaseModel):
    created: int
    marked_existing: int
    unchanged: int
    errors: list[ImportError_]


class Customer(BaseModel):
    id: uuid.UUID
    company: str
    country: str
    created_at: datetime
    existing: bool = Field(description="Already bought from the vendor, or named in its import (R06).")
    first_purchase_at: datetime | None
    imported_at: datetime | None
    sales_process_until: datetime | None
    sales_process_reason: str | None
    identifiers: list[str]


class CustomerPage(BaseModel):
    items: list[Customer]
    next_cursor: str | None
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class SalesProcessFlag(RequestModel):
    until: UtcDatetime
    reason: Reason


# --- ledgers and status ----------------------------------------------------------------------


class PartnerStatus(BaseModel):
    partner_id: uuid.UUID
    level: Level
    active_points: int
    next_level: Level | None
    points_to_next_level: int | None
    discount_rate_bp: int = Field(description="R12: resale discount now, basis points (2000 = 20 %).")
    lifetime_commission_rate_bp: int = Field(description="R13: rate on direct purchases of resale customers.")
    referral_rate_bp: int
    points_at_risk: int = Field(description="Points of licences whose term ends before `at_risk_until`.")
    at_risk_until: datetime
    commission_balances: dict[str, int] = Field(description="Minor units per ISO 4217 currency.")
    terms_version: int


class PointsEntry(BaseModel):
    id: int
    points: int
    effective_at: datetime
    recorded_at: datetime
    rule: str = Field(description="The program rule that made it, e.g. R09.")
    explanation: str
    order_id: str | None
    order_line_id: int | None
    licence_id: str | None
    terms_version: int


class MoneyEntry(BaseModel):
    id: int
    currency: str
    amount: int = Field(description="Minor units; negative for reversals.")
    effective_at: datetime
    recorded_at: datetime
    rule: str
    explanation: str
    order_id: str | None
    order_line_id: int | None
    rate_bp: int | None
    base_amount: int | None
    terms_version: int


class PointsEntryPage(BaseModel):
    items: list[PointsEntry]
    next_cursor: str | None
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class MoneyEntryPage(BaseModel):
    items: list[MoneyEntry]
    next_cursor: str | None
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class LevelChange(BaseModel):
    from_level: Level
    to_level: Level
    points_after: int
    changed_at: datetime
    points_entry_id: int | None = Field(description="The entry that caused the change; null when new terms did.")
    terms_version: int | None = Field(
        default=None, description="The terms version whose taking effect caused the change (R03)."
    )


class Relationship(BaseModel):
    customer_id: uuid.UUID
    company: str
    mode: Literal["referral", "resale"]
    first_order_at: datetime
    established_by_order_id: str
    resale_since: datetime | None
    ended_at: datetime | None


# --- webhooks and pricing --------------------------------------------------------------------


WebhookStatusName = Literal["accepted", "applied", "duplicate", "parked"]


class WebhookReceipt(BaseModel):
    event_id: int
    status: WebhookStatusName = Field(
        description="`accepted` (stored; the worker applies it), `duplicate` (received before), or after a "
        "replay `applied` / `parked`."
    )
    url: str = Field(description="Where the stored event and its outcome can be read.")
    reason_code: str | None = None
    reason: str | None = None


class WebhookEvent(BaseModel):
    id: int
    webhook_id: str
    event_type: str
    subject: str
    received_at: datetime
    status: str
    reason_code: str | None
    reason: str | None
    applied_at: datetime | None
    attempts: int
    failures: int = Field(description="Unexpected errors while applying it; at 5 it is parked as `apply_failed`.")
    waiting_for: str | None
    body: str


class WebhookEventPage(BaseModel):
    items: list[WebhookEvent]
    next_cursor: str | None
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class DiscountMismatch(BaseModel):
    id: int
    order_id: str
    order_line_id: int
    partner_id: uuid.UUID
    expected_rate_bp: int
    expected_amount: int
    reported_amount: int
    reason: str
    recorded_at: datetime


OrderFlagKind = Literal["discount_mismatch", "nfr_resale", "own_company", "relationship_conflict"]


class OrderFlag(BaseModel):
    """An order an admin should review (R12, R17, R22)."""

    id: int
    kind: OrderFlagKind
    order_id: str
    order_line_id: int | None
    partner_id: uuid.UUID | None
    detail: str
    recorded_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


class OrderFlagPage(BaseModel):
    items: list[OrderFlag]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool


class LicenceOut(BaseModel):
    licence_id: str
    order_id: str = Field(description="The order whose line sold it.")
    partner_id: uuid.UUID | None = Field(description="The partner its points went to; null when none earned.")
    customer_id: uuid.UUID
    sku: str
    quantity: int
    points_per_unit: int
    term_end: datetime | None = Field(
        description="Null for a licence sold before the store had to give one (R23): it lapses only when the "
        "store reports it (R10)."
    )
    status: Literal["active", "lapsed"]


class LicencePage(BaseModel):
    items: list[LicenceOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool


class ResolveRequest(RequestModel):
    reason: Reason = Field(
        examples=["Checked with the store: the partner bought for a subsidiary with its own VAT id."]
    )


DirectoryReviewStatus = Literal["pending", "approved", "rejected", "superseded", "resolved"]
DirectoryReviewKind = Literal["text", "name_and_website", "company_name"]


class DirectoryReview(BaseModel):
    """Public text, or a new company name and website, waiting for an admin (R18), or a company name
    registered before R20 checked it."""

    id: int
    partner_id: uuid.UUID
    kind: DirectoryReviewKind
    description: str | None
    services: list[str]
    company: str | None = Field(description="`name_and_website`: the name to show; `company_name`: the name.")
    website: str | None = Field(default=None, description="`name_and_website`: the website to show (null: none).")
    submitted_at: datetime
    status: DirectoryReviewStatus
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None = Field(description="Why it was rejected (or how it was resolved).")


class DirectoryReviewPage(BaseModel):
    items: list[DirectoryReview]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool


class ReasonRequest(RequestModel):
    reason: Reason


class QuoteCustomer(RequestModel):
    company: Name
    country: CountryCode
    email: Email | None = None
    vat_id: VatId | None = None
    store_customer_id: StoreCustomerId | None = None


class QuoteLineIn(RequestModel):
    licence_id: StoreCustomerId | None = Field(default=None, description="For a renewal: the licence renewed.")
    sku: Sku
    quantity: WholeInt = Field(ge=1, le=1_000_000)
    kind: Literal["new", "renewal"]
    list_amount: Money


class QuoteRequest(RequestModel):
    partner_id: uuid.UUID
    customer: QuoteCustomer
    currency: Currency = Field(examples=["EUR"])
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=500)


class QuotedLine(BaseModel):
    sku: str
    quantity: int
    kind: str
    list_amount: int
    discount_amount: int
    net_amount: int


class QuoteResponse(BaseModel):
    partner_id: uuid.UUID
    currency: str
    level: Level | None = Field(description="R03a: the level that prices an order placed now.")
    rate_bp: int
    lines: list[QuotedLine]
    no_discount_reason: str | None = Field(
        description="Why no discount applies: `customer_not_registered`, `customer_of_another_partner`, "
        "`partner_not_active`, `agreement_not_accepted`, `customer_ambiguous`, `nfr_licence`, `own_company` (R22)."
    )
    terms_version: int


class RegistrationRefusal(BaseModel):
    id: int
    partner_id: uuid.UUID
    customer_id: uuid.UUID | None
    code: str
    detail: str
    company: str
    identifiers: list[str]
    refused_at: datetime


class RegistrationRefusalPage(BaseModel):
    items: list[RegistrationRefusal]
    next_cursor: str | None
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


# --- statements, payouts, adjustments, dashboards --------------------------------------------

QuarterName = Annotated[str, StringConstraints(pattern=r"^(19|2\d)\d\d-Q[1-4]$")]
StatementStatusName = Literal["draft", "approved", "paid"]


class StatementLineOut(BaseModel):
    money_entry_id: int
    effective_at: datetime
    order_id: str | None
    customer: str | None
    rule: str
    amount: int
    label: str | None = Field(description="Why the entry is here rather than in its own quarter.")
    explanation: str


class StatementOut(BaseModel):
    id: uuid.UUID
    partner_id: uuid.UUID
    quarter: str
    currency: str
    status: StatementStatusName
    opening_balance: int = Field(description="A negative total carried from the previous statement.")
    lines_total: int
    closing_balance: int
    payable_amount: int = Field(description="Paid on `payout_date`; 0 when the closing balance is negative.")
    payout_date: date
    created_at: datetime
    approved_at: datetime | None
    paid_at: datetime | None
    payment_reference: str | None
    lines: list[StatementLineOut] | None = None


class QuarterCloseOut(BaseModel):
    quarter: str
    closed_now: bool = Field(description="False when the quarter had been closed before: nothing changed.")
    statements: list[StatementOut]


class QuarterOut(BaseModel):
    quarter: str
    time_zone: str
    cutoff: datetime
    closed_at: datetime
    closed_by: str
    statements: int


class Payment(RequestModel):
    payment_reference: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$"), AfterValidator(strip)
    ]
    paid_on: date | None = Field(default=None, description="Default: today.")


class StatementPayment(Payment):
    statement_id: uuid.UUID


class BulkApproval(RequestModel):
    statement_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)


class BulkPayment(RequestModel):
    payments: list[StatementPayment] = Field(min_length=1, max_length=10_000)


class Adjustment(RequestModel):
    kind: Literal["points", "money"]
    amount: WholeInt = Field(
        ge=-(10**9),
        le=10**9,
        description="Points, or minor units; negative to take away. Never 0.",
        json_schema_extra={"not": {"const": 0}},
    )
    currency: Currency | None = None
    reason: Reason


class AdjustmentOut(BaseModel):
    kind: Literal["points", "money"]
    entry_id: int
    amount: int
    currency: str | None
    effective_at: datetime


class PayoutForecast(BaseModel):
    currency: str
    payout_date: date
    expected_amount: int
    unpaid_statements: list[uuid.UUID]
    accruing: int = Field(description="Entries not yet on a statement (the open quarter).")


class Count(BaseModel):
    key: str
    count: int


class QuarterMoney(BaseModel):
    quarter: str
    currency: str
    accrued: int
    payable: int = Field(description="On approved statements not yet paid.")
    paid: int


class TopPartner(BaseModel):
    partner_id: uuid.UUID
    company: str
    value: int
    currency: str | None = None


class ProgramOverview(BaseModel):
    partners_by_level: dict[str, int] = Field(
        description="Active partners by level; one without any entry yet is an Affiliate."
    )
    partners_by_status: dict[str, int]
    points_distribution: list[Count] = Field(
        description="The same active partners by band of points, the bands following the level thresholds of the "
        "terms in force (`0`, `1-159`, ...); one without any entry yet is in `0`, and a band `negative` comes first "
        "when an adjustment took a balance below 0. The counts add up to those of `partners_by_level`."
    )
    commissions: list[QuarterMoney]
    registrations_by_state: dict[str, int]
    refusals_by_reason: dict[str, int]
    parked_webhook_events: dict[str, int]
    discount_mismatches: int
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
    top_partners_by_points: list[TopPartner]
    top_partners_by_commission: list[TopPartner]
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
Description = Annotated[
    str, StringConstraints(max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"), AfterValidator(strip)
]


class DirectoryProfileUpdate(RequestModel):
    """Null empties a field, but for the lists (emptied with `[]`) and `listed`."""

    description: Description | None = None
    services: Annotated[list[ShortText], Field(max_length=30)] | SkipJsonSchema[None] = None
    regions_served: Annotated[list[ShortText], Field(max_length=50)] | SkipJsonSchema[None] = None
    region: ShortText | None = None
    listed: StrictBool | SkipJsonSchema[None] = Field(
        default=None, description="False takes the partner out of the directory."
    )
    website: Website | None = None
    languages: Annotated[list[LanguageCode], Field(max_length=20)] | SkipJsonSchema[None] = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class DirectoryEntry(BaseModel):
    """The public fields of a partner, and nothing else."""

    id: uuid.UUID
    name: str
    level: Level
    country: str
    region: str | None
    website: str | None
    languages: list[str]
    services: list[str]
    regions_served: list[str]
    description: str | None


class DirectoryPage(BaseModel):
    items: list[DirectoryEntry]
    page: int
    per_page: int
    has_more: bool = Field(description="Whether page `page + 1` holds more partners.")


NfrPurpose = Literal["demonstration", "training", "evaluation"]


class NfrRequest(RequestModel):
    sku: Sku
    purpose: NfrPurpose = Field(description="What the free licence is for (R17).", examples=["demonstration"])
    acknowledged: StrictBool = Field(
        json_schema_extra={"const": True},
        description="Must be true: the partner acknowledges the licence is not for its company's production "
        "needs nor for use inside a product or service sold to customers (OEM, API).",
        examples=[True],
    )


class NfrLicenceOut(BaseModel):
    id: uuid.UUID
    partner_id: uuid.UUID
    sku: str
    licence_id: str
    issued_at: datetime
    purpose: NfrPurpose | None = Field(description="Null for licences issued before a purpose was asked.")
    acknowledged_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None


class NfrViolationOut(BaseModel):
    id: int
    licence_id: str
    partner_id: uuid.UUID
    source: str
    order_id: str | None
    recorded_at: datetime


# --- leads -----------------------------------------------------------------------------------


class LeadCreate(RequestModel):
    company: Name
    country: CountryCode
    region: ShortText | None = None
    city: ShortText | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    products: list[Sku] = Field(default_factory=list, max_length=20)
    contact_name: Name
    contact_email: Email
    vat_id: VatId | None = None
    domain: Domain | None = None


class RankedPartner(BaseModel):
    partner_id: uuid.UUID
    name: str
    level: Level
    tier: int = Field(description="0 same country and region, 1 same country, 2 same continent, 3 elsewhere.")
    distance_km: float | None
    open_leads: int
    reason: str


class LeadOfferOut(BaseModel):
    id: uuid.UUID
    lead_id: uuid.UUID
    partner_id: uuid.UUID
    registration_id: uuid.UUID | None
    state: Literal["offered", "accepted", "declined", "expired", "withdrawn", "refused"]
    rank_reason: str
    reason: str | None
    offered_at: datetime
    deadline: datetime | None
    ended_at: datetime | None


class LeadOut(BaseModel):
    id: uuid.UUID
    company: str
    country: str
    region: str | None
    city: str | None
    products: list[str]
    status: Literal["open", "offered", "accepted", "exhausted"]
    created_at: datetime
    ranking: list[RankedPartner]
    history: list[LeadOfferOut]


class LeadAssignment(RequestModel):
    partner_id: uuid.UUID | None = Field(default=None, description="Default: the best-ranked partner not tried yet.")


class OfferDecline(RequestModel):
    reason: Reason | None = None


# --- domain events and jobs --------------------------------------------------------------------


class DomainEvent(BaseModel):
    id: int = Field(description="Increasing: events sort by id.")
    type: str = Field(
        description="`noun.past_verb`; each type's payload schema, with an example, is "
        "`components/schemas/EventPayload.<type>`."
    )
    occurred_at: datetime
    recorded_at: datetime
    partner_id: uuid.UUID | None
    subject: str = Field(description="The main object, e.g. `registration:<id>`.")
    refs: dict[str, str] = Field(description="Other ids it concerns, by name.")
    version: int = Field(description="Version of this type's payload schema.")
    payload: dict[str, object] = Field(description="The type's payload: `components/schemas/EventPayload.<type>`.")


class DomainEventPage(BaseModel):
    items: list[DomainEvent]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool


class Job(BaseModel):
    name: str
    description: str
    every_seconds: int
    next_run_at: datetime
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_outcome: Literal["ok", "failed"] | None
    last_counts: dict[str, int]
    last_error: str | None
    runs: int


class StoreEventApplier(BaseModel):
    accepted: int = Field(description="Store events waiting to be applied.")
    oldest_accepted_at: datetime | None = Field(description="When the oldest of them arrived (the worker's lag).")
    holder: str | None = Field(description="The worker holding the applier's lease, if any.")
    lease_expires_at: datetime | None


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
    items: list[Job]
    next_cursor: str | None = Field(description="Always null: every job fits on one page.")
    has_more: bool
    store_events: StoreEventApplier
    applier: WorkerApplier


# --- the list shape: every admin and partner list answers `items`, `next_cursor`, `has_more` -------


class _OnePage(BaseModel):
    """A list that always fits on one page: the shape of every list, with nothing more to fetch."""

    next_cursor: str | None = Field(default=None, description="Always null: the whole list is on this page.")
    has_more: bool = Field(default=False, description="Always false: the whole list is on this page.")


class ApiKeyList(_OnePage):
    items: list[ApiKey]


class ServiceApiKeyList(_OnePage):
    items: list[ServiceApiKey]


class AgreementList(_OnePage):
    items: list[Agreement]


class AgreementAcceptanceList(_OnePage):
    items: list[AgreementAcceptance]


class StatusChangeList(_OnePage):
    items: list[StatusChange]


class DeclaredIdentifierList(_OnePage):
    items: list[DeclaredIdentifier]


class RegistrationList(_OnePage):
    items: list[Registration]


class LevelChangeList(_OnePage):
    items: list[LevelChange]


class RelationshipList(_OnePage):
    items: list[Relationship]


class TermsVersionList(_OnePage):
    items: list[TermsVersion]


class QuarterList(_OnePage):
    items: list[QuarterOut]


class StatementList(_OnePage):
    items: list[StatementOut]


class PayoutForecastList(_OnePage):
    items: list[PayoutForecast]


class NfrLicenceList(_OnePage):
    items: list[NfrLicenceOut]


class NfrViolationList(_OnePage):
    items: list[NfrViolationOut]


class LeadOfferList(_OnePage):
    items: list[LeadOfferOut]


class OverdueQuarter(BaseModel):
    quarter: str
    partner_id: uuid.UUID
    company: str
    currency: str
    entries: int = Field(description="Payable money entries of the partner that the quarter's statement would take.")
    opening_balance: int = Field(description="A negative total carried from the partner's last statement.")
    entries_total: int
    payable_amount: int = Field(description="What the statement would pay if the quarter were closed now (0 or more).")
    payout_date: date = Field(description="The quarter's payout date, passed.")


class OverdueQuarterPage(BaseModel):
    items: list[OverdueQuarter]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool


class StatementSearch(BaseModel):
    items: list[StatementOut]
    next_cursor: str | None = Field(default=None, description="Always null: narrow the filters or raise `limit`.")
    has_more: bool = Field(description="Whether more statements match than `limit`.")


class DiscountMismatchPage(BaseModel):
    items: list[DiscountMismatch]
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
    url: TargetUrl
    event_types: SubscriptionEventTypes
    partner_id: uuid.UUID | None = Field(
        default=None, description="Admins: only this partner's events. Ignored under a partner's route."
    )
    description: SubscriptionDescription | None = None


class PartnerWebhookSubscriptionCreate(RequestModel):
    url: TargetUrl
    event_types: PartnerSubscriptionEventTypes
    description: SubscriptionDescription | None = None


class WebhookSubscriptionUpdate(RequestModel):
    url: TargetUrl | None = None
    event_types: SubscriptionEventTypes | None = None
    enabled: StrictBool | None = Field(
        default=None, description="`true` re-enables: events from then on are sent (not those missed)."
    )
    description: SubscriptionDescription | None = None


class PartnerWebhookSubscriptionUpdate(RequestModel):
    url: TargetUrl | None = None
    event_types: PartnerSubscriptionEventTypes | None = None
    enabled: StrictBool | None = Field(
        default=None, description="`true` re-enables: events from then on are sent (not those missed)."
    )
    description: SubscriptionDescription | None = None


class WebhookSubscription(BaseModel):
    id: uuid.UUID
    owner: Literal["admin", "partner"] = Field(description="Who made it: an admin, or the partner for itself.")
    partner_id: uuid.UUID | None
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, until when the previous secret also signs."
    )
    created_at: datetime
    updated_at: datetime


class WebhookSubscriptionWithSecret(WebhookSubscription):
    secret: str = Field(
        description="The signing secret (`whsec_` + base64), shown only now: verify deliveries with it.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookSubscriptionPage(BaseModel):
    items: list[WebhookSubscription]
    next_cursor: str | None
    has_more: bool


class WebhookAttempt(BaseModel):
    attempted_at: datetime
    status_code: int | None = Field(description="The target's HTTP status; null when no answer came.")
    latency_ms: int
    error: str | None = Field(description="Why it failed: a non-2xx answer, a timeout, a refused target...")
    response_body: str | None = Field(description="The first 1 KiB of the answer.")


class WebhookDelivery(BaseModel):
    id: int
    subscription_id: uuid.UUID
    event_id: int | None = Field(description="The domain event sent; null for a `ping`.")
    event_type: str
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    status: Literal["pending", "sending", "delivered", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[WebhookAttempt] = Field(description="Each attempt, oldest first.")


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDelivery]
    next_cursor: str | None
    has_more: bool
