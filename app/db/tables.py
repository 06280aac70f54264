"""SQLModel table models. API schemas live in the routers' schema modules, never here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, MetaData, SmallInteger, Text, UniqueConstraint, event, text
from sqlmodel import Field, SQLModel

from app.db.types import BigIntId, UTCDateTime

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Partner(SQLModel, table=True):
    __tablename__ = "partners"
    __table_args__ = (
        Index(
            "ix_partners_directory",
            "level_rank",
            text("lower(coalesce(published_company, company))"),
            "id",
            postgresql_where=text("status = 'active' AND listed"),
            sqlite_where=text("status = 'active' AND listed"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    company: str = Field(max_length=200)
    country: str = Field(max_length=2, index=True)
    """ISO 3166-1 alpha-2, upper case."""
    contact_name: str = Field(max_length=200)
    contact_email: str = Field(max_length=320, unique=True)
    """Lower-cased; one partner per contact address."""
    website: str | None = Field(default=None, max_length=2083)
    vat_id: str | None = Field(default=None, max_length=64)
    """Normalised (R05), valid for its country: one of the partner's own identifiers (R22)."""
    languages: list[str] = Field(default_factory=list, sa_type=JSON)
    """ISO 639-1 codes."""
    status: str = Field(max_length=16, index=True)
    """Current status, kept in step with `partner_status_changes` (the history is the truth)."""
    created_at: datetime = utc_column(index=True)
    updated_at: datetime = utc_column()
    region: str | None = Field(default=None, max_length=100)
    """Where the partner sits within its country (state, province, region), for the directory."""
    listed: bool = True
    """Shown in the public directory while active (R18); the partner may opt out."""
    description: str | None = Field(default=None, max_length=2000)
    services: list[str] = Field(default_factory=list, sa_type=JSON)
    """The partner's latest description and services; the directory shows the published ones (R18)."""
    published_description: str | None = Field(default=None, max_length=2000)
    published_services: list[str] = Field(default_factory=list, sa_type=JSON)
    """The last description and services an admin approved: what the public directory shows (R18)."""
    published_company: str | None = Field(default=None, max_length=200)
    published_website: str | None = Field(default=None, max_length=2083)
    """The company name and website the public directory shows: those the partner registered with, then
    the last ones an admin approved (R18). A null `published_company` marks a partner registered by a
    build before these columns: the directory shows its registered name and website until they change."""
    hidden_at: datetime | None = utc_column(nullable=True)
    hidden_reason: str | None = Field(default=None, max_length=1000)
    """Set when an admin took the partner out of the directory (R18); only an admin undoes it.
    Separate from `listed`, the partner's own opt-out."""
    regions_served: list[str] = Field(default_factory=list, sa_type=JSON)
    latitude: float | None = None
    longitude: float | None = None
    """Where the partner is, for routing leads by distance (R19)."""
    search_text: str = Field(default="", sa_type=Text)
    """Published name, description and services, lower case, one per line: what the directory's `q` searches
    (derived; kept by `_derive_directory_text` on every ORM write)."""
    region_text: str = Field(default="", sa_type=Text)
    """Region and regions served, lower case, one per line: what the directory's `region` searches."""
    level_rank: int = Field(default=3, sa_type=SmallInteger)
    """The directory's order: 0 Platinum, 1 Gold, 2 Silver, 3 Affiliate. Kept in step with
    `partner_balances.level` in the transaction that changes the level, so the directory reads one
    index in order instead of sorting every partner."""


def directory_text(*parts: str | list[str] | None) -> str:
    """Lower-cased text of the parts, one per line (input is one line each, so a search never spans
    two fields)."""
    lines: list[str] = []
    for part in parts:
        if isinstance(part, list):
            lines.extend(str(p) for p in part)
        elif part:
            lines.append(part)
    return "\n".join(lines).lower()


@event.listens_for(Partner, "before_insert")
@event.listens_for(Partner, "before_update")
def _derive_directory_text(_mapper: Any, _connection: Any, partner: Partner) -> None:
    partner.search_text = directory_text(
        partner.published_company or partner.company, partner.published_description, partner.published_services
    )
    partner.region_text = directory_text(partner.region, partner.regions_served)


POSTGRES_ONLY_INDEXES = frozenset({"ix_partners_search_text_trgm", "ix_partners_region_text_trgm"})
"""Trigram indexes for the directory's substring searches, made by the migration where Postgres has
pg_trgm (SQLite scans); not part of the models, so the model comparison leaves them out."""


class PartnerIdentifier(SQLModel, table=True):
    """R22: an identifier of its own company the partner declared (its VAT id, its website's domain,
    its contact e-mail's domain), with when it held it. Written whenever the partner's identifiers
    change; a value withdrawn keeps counting as the partner's own."""

    __tablename__ = "partner_identifiers"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    kind: str = Field(max_length=16)
    """`vat` or `domain`, normalised as customers' identifiers are (R05)."""
    value: str = Field(max_length=320)
    declared_at: datetime = utc_column()
    withdrawn_at: datetime | None = utc_column(nullable=True)
    """When the partner stopped declaring it; None while it still does."""


class PartnerStatusChange(SQLModel, table=True):
    """Every status a partner has had, with the moment it took effect (R04 asks about the past)."""

    __tablename__ = "partner_status_changes"
    __table_args__ = (Index(None, "partner_id", "effective_at"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id")
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    effective_at: datetime = utc_column()
    reason: str = Field(max_length=1000)
    actor: str = Field(max_length=100)


class AgreementVersion(SQLModel, table=True):
    __tablename__ = "agreement_versions"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    version: str = Field(max_length=50, unique=True)
    title: str = Field(max_length=200)
    url: str | None = Field(default=None, max_length=2083)
    published_at: datetime = utc_column(index=True)
    accept_by: datetime = utc_column()
    """Until this moment the acceptance of the previous version still binds a partner."""


class AgreementAcceptance(SQLModel, table=True):
    __tablename__ = "agreement_acceptances"
    __table_args__ = (UniqueConstraint("partner_id", "agreement_version_id"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    agreement_version_id: int = Field(sa_type=BigIntId, foreign_key="agreement_versions.id")
    accepted_at: datetime = utc_column()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=16)
    """`admin`, `partner` or `store`."""
    partner_id: uuid.UUID | None = Field(default=None, foreign_key="partners.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=32)
    """The readable start of the key, shown in listings so a person can tell keys apart."""
    key_hash: str = Field(max_length=64, unique=True)
    """SHA-256 of the whole key, hex. The key itself is never stored."""
    scopes: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = utc_column()
    created_by: str = Field(max_length=100)
    last_used_at: datetime | None = utc_column(nullable=True)
    """Written at most once a minute per key."""
    revoked_at: datetime | None = utc_column(nullable=True)


class AuditEvent(SQLModel, table=True):
    """Append-only: who did what to which object, with the state before and after."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "object_type", "object_id"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    occurred_at: datetime = utc_column(index=True)
    actor: str = Field(max_length=100)
    """`admin:<key id>`, `partner:<partner id>`, `store:<key id>`, `public`, `cli` or `system`."""
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    request_id: str | None = Field(default=None, max_length=64)


class ProgramSettings(SQLModel, table=True):
    """One row of program-wide switches that admins change at run time."""

    __tablename__ = "program_settings"

    id: int = Field(default=1, primary_key=True)
    auto_approve: bool = True
    """New partners are active at once; when off, they wait as `pending` for an admin."""
    updated_at: datetime = utc_column()


class RateLimitBucket(SQLModel, table=True):
    """A fixed-window counter shared by every worker (the database is the one shared place)."""

    __tablename__ = "rate_limit_buckets"

    key: str = Field(primary_key=True, max_length=200)
    hits: int = 0
    expires_at: datetime = utc_column(index=True)


# --- program terms ---------------------------------------------------------------------------


class ProgramTermsVersion(SQLModel, table=True):
    """An immutable version of the program's numbers, in force from `effective_from` (R01, R02)."""

    __tablename__ = "program_terms_versions"

    version: int = Field(primary_key=True)
    effective_from: datetime = utc_column(index=True)
    published_at: datetime = utc_column()
    published_by: str = Field(max_length=100)
    terms: dict[str, Any] = Field(sa_type=JSON)
    digest: str = Field(max_length=64)
    """SHA-256 of `terms` (app.domain.terms.digest): names the content, so a process parses it once."""


# --- customers and registrations -------------------------------------------------------------


class Customer(SQLModel, table=True):
    __tablename__ = "customers"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    company: str = Field(max_length=200)
    country: str = Field(max_length=2)
    created_at: datetime = utc_column()
    first_purchase_at: datetime | None = utc_column(nullable=True)
    """The earliest order of this customer the service knows of, through anyone."""
    imported_at: datetime | None = utc_column(nullable=True)
    """Set when the vendor's list of existing customers named it (R06)."""
    sales_process_until: datetime | None = utc_column(nullable=True)
    """The vendor is in an active sales process with it until then (R06)."""
    sales_process_reason: str | None = Field(default=None, max_length=1000)


class CustomerIdentifier(SQLModel, table=True):
    __tablename__ = "customer_identifiers"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key="customers.id", index=True)
    kind: str = Field(max_length=16)
    """`vat`, `domain` or `store_id`, normalised (R05)."""
    value: str = Field(max_length=255)


class Registration(SQLModel, table=True):
    """A partner's record of a prospective customer (deal registration, R05-R07)."""

    __tablename__ = "registrations"
    __table_args__ = (
        # One open registration per customer: the database, not a read-then-write, decides the race.
        Index(
            "uq_registrations_open_customer",
            "customer_id",
            unique=True,
            postgresql_where=text("state IN ('live', 'offered')"),
            sqlite_where=text("state IN ('live', 'offered')"),
        ),
        Index(None, "partner_id", "state"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id")
    customer_id: uuid.UUID = Field(foreign_key="customers.id", index=True)
    state: str = Field(max_length=16)
    """`live`, `offered`, `converted`, `expired` or `withdrawn`."""
    registered_at: datetime = utc_column()
    expires_at: datetime = utc_column()
    terms_version: int
    company: str = Field(max_length=200)
    country: str = Field(max_length=2)
    contact_name: str = Field(max_length=200)
    contact_email: str = Field(max_length=320)
    vat_id: str | None = Field(default=None, max_length=64)
    domain: str | None = Field(default=None, max_length=255)
    store_customer_id: str | None = Field(default=None, max_length=255)
    ended_at: datetime | None = utc_column(nullable=True)
    converted_order_id: str | None = Field(default=None, max_length=255)


class RegistrationRefusal(SQLModel, table=True):
    """Every refused registration, for the dashboards (R06)."""

    __tablename__ = "registration_refusals"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    customer_id: uuid.UUID | None = Field(default=None, foreign_key="customers.id")
    code: str = Field(max_length=64, index=True)
    detail: str = Field(max_length=1000)
    company: str = Field(max_length=200)
    identifiers: list[str] = Field(default_factory=list, sa_type=JSON)
    refused_at: datetime = utc_column(index=True)


class Relationship(SQLModel, table=True):
    """Partner and customer, established by the first qualifying order (R08)."""

    __tablename__ = "relationships"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    customer_id: uuid.UUID = Field(foreign_key="customers.id", unique=True)
    mode: str = Field(max_length=16)
    """`referral` or `resale`; referral becomes resale with the partner's first resale order."""
    first_order_at: datetime = utc_column()
    established_by_order_id: str = Field(max_length=255)
    resale_since: datetime | None = utc_column(nullable=True)
    ended_at: datetime | None = utc_column(nullable=True)
    """Set when the partner was terminated (R04)."""


# --- orders, licences, refunds ---------------------------------------------------------------


class Order(SQLModel, table=True):
    __tablename__ = "orders"

    order_id: str = Field(primary_key=True, max_length=255)
    placed_at: datetime = utc_column(index=True)
    currency: str = Field(max_length=3)
    buyer_partner_id: uuid.UUID | None = Field(default=None, foreign_key="partners.id")
    customer_id: uuid.UUID = Field(foreign_key="customers.id", index=True)
    content_hash: str = Field(max_length=64)
    terms_version: int
    partner_id: uuid.UUID | None = Field(default=None, foreign_key="partners.id", index=True)
    """The partner the order is attributed to, if any (R08)."""
    mode: str | None = Field(default=None, max_length=16)
    level: str | None = Field(default=None, max_length=16)
    """R03a: the partner's level as of `placed_at`, fixed when the order was processed."""
    outcome: str = Field(max_length=64)
    """Why it earned or did not: `credited`, `no_match`, `partner_not_eligible`, ..."""
    webhook_event_id: int | None = Field(default=None, sa_type=BigIntId)
    recorded_at: datetime = utc_column()


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "line_id"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    order_id: str = Field(foreign_key="orders.order_id", max_length=255)
    line_id: str = Field(max_length=255)
    sku: str = Field(max_length=64)
    quantity: int
    kind: str = Field(max_length=16)
    licence_id: str | None = Field(default=None, max_length=255, index=True)
    term_end: datetime | None = utc_column(nullable=True)
    list_amount: int = Field(sa_type=BigInteger)
    discount_amount: int = Field(sa_type=BigInteger)
    tax_amount: int = Field(default=0, sa_type=BigInteger)
    """R23: the tax included in `paid_amount`; lines recorded before it existed have 0."""
    paid_amount: int = Field(sa_type=BigInteger)
    refunded_amount: int = Field(default=0, sa_type=BigInteger)
    """Running total of this line's refunds, kept with the refund entries (R14)."""


class Licence(SQLModel, table=True):
    """One subscription line the store sold; renewed or lapsed (R10)."""

    __tablename__ = "licences"
    __table_args__ = (
        Index(None, "status", "term_end"),
        # A partner's licences, and its active ones by term end (points at risk in every status read):
        # with `partner_id` alone, Postgres's generic plan for that read intersected it with the
        # (status, term_end) index and walked every active licence of the program.
        Index(None, "partner_id", "status", "term_end"),
    )

    licence_id: str = Field(primary_key=True, max_length=255)
    partner_id: uuid.UUID | None = Field(default=None, foreign_key="partners.id")
    customer_id: uuid.UUID = Field(foreign_key="customers.id")
    sku: str = Field(max_length=64)
    quantity: int
    points_per_unit: int
    term_end: datetime | None = utc_column(nullable=True)
    status: str = Field(max_length=16)
    """`active` or `lapsed`."""
    lapse_entry_id: int | None = Field(default=None, sa_type=BigIntId)
    """The points entry that revoked its points, restored if it is renewed."""
    order_line_id: int = Field(sa_type=BigIntId, foreign_key="order_lines.id")


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"

    refund_id: str = Field(primary_key=True, max_length=255)
    order_id: str = Field(foreign_key="orders.order_id", max_length=255, index=True)
    refunded_at: datetime = utc_column()
    content_hash: str = Field(max_length=64)
    recorded_at: datetime = utc_column()


# --- ledgers ---------------------------------------------------------------------------------


class PointsEntry(SQLModel, table=True):
    """Append-only. Corrections are reversing entries (R03, R21)."""

    __tablename__ = "points_entries"
    __table_args__ = (Index(None, "partner_id", "effective_at"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id")
    points: int = Field(sa_type=BigInteger)
    effective_at: datetime = utc_column()
    recorded_at: datetime = utc_column()
    rule: str = Field(max_length=16)
    explanation: str = Field(max_length=500)
    order_id: str | None = Field(default=None, max_length=255)
    order_line_id: int | None = Field(default=None, sa_type=BigIntId, foreign_key="order_lines.id", index=True)
    licence_id: str | None = Field(default=None, max_length=255, index=True)
    terms_version: int


class MoneyEntry(SQLModel, table=True):
    """Append-only commission ledger, integer minor units per currency (R11, R13-R15, R21)."""

    __tablename__ = "money_entries"
    __table_args__ = (Index(None, "partner_id", "effective_at"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id")
    currency: str = Field(max_length=3)
    amount: int = Field(sa_type=BigInteger)
    effective_at: datetime = utc_column()
    recorded_at: datetime = utc_column()
    rule: str = Field(max_length=16)
    explanation: str = Field(max_length=500)
    order_id: str | None = Field(default=None, max_length=255)
    order_line_id: int | None = Field(default=None, sa_type=BigIntId, foreign_key="order_lines.id", index=True)
    rate_bp: int | None = None
    base_amount: int | None = Field(default=None, sa_type=BigInteger)
    terms_version: int


class PartnerBalance(SQLModel, table=True):
    """Summary of the points ledger, updated in the same transaction as each entry."""

    __tablename__ = "partner_balances"

    partner_id: uuid.UUID = Field(foreign_key="partners.id", primary_key=True)
    points: int = Field(default=0, sa_type=BigInteger, index=True)
    level: str = Field(default="affiliate", max_length=16)
    updated_at: datetime = utc_column()


class PartnerMoneyBalance(SQLModel, table=True):
    __tablename__ = "partner_money_balances"
    __table_args__ = (Index(None, "currency", "amount"),)

    partner_id: uuid.UUID = Field(foreign_key="partners.id", primary_key=True)
    currency: str = Field(primary_key=True, max_length=3)
    amount: int = Field(default=0, sa_type=BigInteger)


class LevelChange(SQLModel, table=True):
    __tablename__ = "level_changes"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    from_level: str = Field(max_length=16)
    to_level: str = Field(max_length=16)
    points_after: int = Field(sa_type=BigInteger)
    changed_at: datetime = utc_column()
    points_entry_id: int | None = Field(default=None, sa_type=BigIntId, foreign_key="points_entries.id")
    """The entry that moved the points across a threshold; null when new terms caused the change."""
    terms_version: int | None = None
    """The terms version whose taking effect changed the level (R03); null when an entry did."""


class DiscountMismatch(SQLModel, table=True):
    """The store applied another discount than the expected one (R12): kept for review."""

    __tablename__ = "discount_mismatches"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    order_id: str = Field(foreign_key="orders.order_id", max_length=255, index=True)
    order_line_id: int = Field(sa_type=BigIntId, foreign_key="order_lines.id")
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    expected_rate_bp: int
    expected_amount: int = Field(sa_type=BigInteger)
    reported_amount: int = Field(sa_type=BigInteger)
    reason: str = Field(max_length=200)
    recorded_at: datetime = utc_column()


class DirectoryReview(SQLModel, table=True):
    """Partner-written public text, or a new company name or website, waiting for an admin (R18), or a
    company name registered before R20 checked it (kept until the partner changes it)."""

    __tablename__ = "directory_reviews"
    __table_args__ = (Index(None, "status", "id"), Index(None, "partner_id", "id"))

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id")
    kind: str = Field(max_length=16)
    """`text` (description and services to publish), `name_and_website` (the company name and website to
    show) or `company_name` (R20)."""
    description: str | None = Field(default=None, max_length=2000)
    services: list[str] = Field(default_factory=list, sa_type=JSON)
    company: str | None = Field(default=None, max_length=200)
    website: str | None = Field(default=None, max_length=2083)
    submitted_at: datetime = utc_column()
    status: str = Field(max_length=16)
    """`pending`, then `approved`, `rejected`, `superseded` (newer text sent) or `resolved` (name changed)."""
    decided_at: datetime | None = utc_column(nullable=True)
    decided_by: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=1000)


class OrderFlag(SQLModel, table=True):
    """An order an admin should review: a discount other than expected (R12), a not-for-resale licence
    sold (R17), a partner's own company as its customer (R22), or a late order within a partner's
    registration of a customer whose relationship is another's (R08). Resolved with a reason, never deleted."""

    __tablename__ = "order_flags"
    __table_args__ = (Index(None, "kind", "id"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    kind: str = Field(max_length=32)
    """`discount_mismatch`, `nfr_resale`, `own_company` or `relationship_conflict`."""
    order_id: str = Field(max_length=255, index=True)
    order_line_id: int | None = Field(default=None, sa_type=BigIntId)
    partner_id: uuid.UUID | None = Field(default=None, foreign_key="partners.id", index=True)
    detail: str = Field(max_length=500)
    recorded_at: datetime = utc_column()
    resolved_at: datetime | None = utc_column(nullable=True)
    resolved_by: str | None = Field(default=None, max_length=100)
    resolution: str | None = Field(default=None, max_length=1000)


# --- webhooks --------------------------------------------------------------------------------


class WebhookEvent(SQLModel, table=True):
    """Every accepted store event, raw, stored in the transaction that applied or parked it."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index(None, "status", "received_at"), Index(None, "subject"), Index(None, "status", "id"))

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    webhook_id: str = Field(max_length=255, unique=True)
    event_type: str = Field(max_length=64)
    subject: str = Field(max_length=300)
    """What the event is about: `order:<id>`, `refund:<id>`, `licence:<id>`."""
    body: str = Field(sa_type=Text)
    received_at: datetime = utc_column()
    status: str = Field(max_length=16)
    """`accepted` (stored, waiting for the applier), then `applied`, `duplicate` or `parked`."""
    reason_code: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=1000)
    applied_at: datetime | None = utc_column(nullable=True)
    attempts: int = 1
    waiting_for: str | None = Field(default=None, max_length=300, index=True)
    """A parked event that applies by itself when this arrives, e.g. `order:<id>`."""
    failures: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Unexpected errors while applying it; after five it is parked as `apply_failed`."""
    traceparent: str | None = Field(default=None, max_length=64)
    """The accepting request's span context (W3C `traceparent`) when tracing is on: the worker's span
    applying the event links to it."""


class RejectedWebhookEvent(SQLModel, table=True):
    """Correctly signed bodies that were malformed: kept raw, nothing applied."""

    __tablename__ = "rejected_webhook_events"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    webhook_id: str = Field(max_length=255)
    body: str = Field(sa_type=Text)
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    received_at: datetime = utc_column()


# --- statements and payouts (R16) ------------------------------------------------------------


class QuarterClose(SQLModel, table=True):
    """A closed quarter: its statements exist and never change."""

    __tablename__ = "quarter_closes"

    quarter: str = Field(primary_key=True, max_length=7)
    """`2026-Q1`."""
    time_zone: str = Field(max_length=64)
    cutoff: datetime = utc_column()
    """The end of the quarter in the program time zone: entries effective before it belong to it."""
    closed_at: datetime = utc_column()
    closed_by: str = Field(max_length=100)
    statements: int = 0
    """How many statements the close made; -1 (`CLOSE_IN_PROGRESS`) while it makes them, in its own
    transaction. The database lets the count be set once, and statements be added to the quarter only
    while it is -1."""


CLOSE_IN_PROGRESS = -1


class StatementTransition(SQLModel, table=True):
    """A move a closed quarter's statement may make, and which of its fields the move sets
    (`approval`: approved_at, approved_by; `payment`: paid_at, payment_reference). The database's
    triggers read this list; a new state is new rows here."""

    __tablename__ = "statement_transitions"

    from_status: str = Field(primary_key=True, max_length=16)
    to_status: str = Field(primary_key=True, max_length=16)
    sets: str = Field(max_length=16)


class Statement(SQLModel, table=True):
    """One partner's commissions for one quarter in one currency (R16)."""

    __tablename__ = "statements"
    __table_args__ = (UniqueConstraint("partner_id", "quarter", "currency"), Index(None, "quarter", "status"))

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    quarter: str = Field(max_length=7)
    currency: str = Field(max_length=3)
    status: str = Field(max_length=16)
    """`draft`, `approved` or `paid`."""
    opening_balance: int = Field(sa_type=BigInteger)
    """A negative total carried from the previous statement, else 0."""
    lines_total: int = Field(sa_type=BigInteger)
    closing_balance: int = Field(sa_type=BigInteger)
    payable_amount: int = Field(sa_type=BigInteger)
    """What is paid: the closing balance when positive, else 0 (the negative is carried)."""
    payout_date: datetime = utc_column()
    created_at: datetime = utc_column()
    approved_at: datetime | None = utc_column(nullable=True)
    approved_by: str | None = Field(default=None, max_length=100)
    paid_at: datetime | None = utc_column(nullable=True)
    payment_reference: str | None = Field(default=None, max_length=200)


class StatementLine(SQLModel, table=True):
    __tablename__ = "statement_lines"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    statement_id: uuid.UUID = Field(foreign_key="statements.id", index=True)
    money_entry_id: int = Field(sa_type=BigIntId, foreign_key="money_entries.id", unique=True)
    """Each entry is paid in exactly one statement."""
    amount: int = Field(sa_type=BigInteger)
    label: str | None = Field(default=None, max_length=200)
    """Why the entry is here and not in its own quarter: held, or arrived after its quarter closed."""


class PartnerQuarterMoney(SQLModel, table=True):
    """Commission accrued per partner, quarter and currency, kept with each entry (dashboards)."""

    __tablename__ = "partner_quarter_money"

    partner_id: uuid.UUID = Field(foreign_key="partners.id", primary_key=True)
    quarter: str = Field(primary_key=True, max_length=7)
    currency: str = Field(primary_key=True, max_length=3)
    accrued: int = Field(default=0, sa_type=BigInteger)


class IdempotencyRecord(SQLModel, table=True):
    """An `Idempotency-Key` and the answer given to it (IETF draft semantics)."""

    __tablename__ = "idempotency_records"

    actor: str = Field(primary_key=True, max_length=100)
    key: str = Field(primary_key=True, max_length=255)
    method: str = Field(max_length=8)
    path: str = Field(max_length=500)
    request_hash: str = Field(max_length=64)
    status: str = Field(max_length=16)
    """`in_flight` or `done`."""
    response_status: int | None = None
    response_body: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = utc_column()
    claim_token: str | None = Field(default=None, max_length=32)
    """The request that holds the key now. A request commits its answer (and its work) only while
    its own token is still here: once a retry has taken the key over, the original's work rolls back."""
    claimed_at: datetime | None = utc_column(nullable=True)
    """When the holder claimed the key; past the lease, a retry may take it over (a killed worker)."""


class NfrLicence(SQLModel, table=True):
    """A free not-for-resale licence of a partner (R17): it earns nothing and cannot be sold."""

    __tablename__ = "nfr_licences"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    sku: str = Field(max_length=64)
    licence_id: str = Field(max_length=255, unique=True)
    """The identifier the store knows the licence by."""
    issued_at: datetime = utc_column()
    purpose: str | None = Field(default=None, max_length=32)
    """`demonstration`, `training` or `evaluation` (R17); null for licences issued before it was asked."""
    acknowledged_at: datetime | None = utc_column(nullable=True)
    """When the partner acknowledged the licence is not for its production needs nor for resale (R17)."""
    revoked_at: datetime | None = utc_column(nullable=True)
    revoked_reason: str | None = Field(default=None, max_length=1000)


class NfrViolation(SQLModel, table=True):
    """An order or quote that tried to sell a not-for-resale licence: refused any credit, kept for admins."""

    __tablename__ = "nfr_violations"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    licence_id: str = Field(max_length=255, index=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    source: str = Field(max_length=16)
    """`order` or `quote`."""
    order_id: str | None = Field(default=None, max_length=255)
    recorded_at: datetime = utc_column()


class Lead(SQLModel, table=True):
    """An inbound prospect the vendor routes to partners by location (R19)."""

    __tablename__ = "leads"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    company: str = Field(max_length=200)
    country: str = Field(max_length=2)
    region: str | None = Field(default=None, max_length=100)
    city: str | None = Field(default=None, max_length=100)
    latitude: float | None = None
    longitude: float | None = None
    products: list[str] = Field(default_factory=list, sa_type=JSON)
    contact_name: str = Field(max_length=200)
    contact_email: str = Field(max_length=320)
    vat_id: str | None = Field(default=None, max_length=64)
    domain: str | None = Field(default=None, max_length=255)
    status: str = Field(max_length=16)
    """`open`, `offered`, `accepted` or `exhausted`."""
    created_at: datetime = utc_column()
    created_by: str = Field(max_length=100)


class LeadOffer(SQLModel, table=True):
    """One step of a lead's history: offered to a partner, refused by a rule, accepted, declined, expired."""

    __tablename__ = "lead_offers"
    __table_args__ = (Index(None, "partner_id", "state"), Index(None, "state", "deadline"))

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    lead_id: uuid.UUID = Field(foreign_key="leads.id", index=True)
    sequence: int
    """1 for the lead's first offer, 2 for the next: the order of its history."""
    partner_id: uuid.UUID = Field(foreign_key="partners.id")
    registration_id: uuid.UUID | None = Field(default=None, foreign_key="registrations.id")
    state: str = Field(max_length=16)
    """`offered`, `accepted`, `declined`, `expired`, `withdrawn` or `refused`."""
    rank_reason: str = Field(max_length=300)
    reason: str | None = Field(default=None, max_length=1000)
    offered_at: datetime = utc_column()
    deadline: datetime | None = utc_column(nullable=True)
    ended_at: datetime | None = utc_column(nullable=True)


# --- domain events and the worker ------------------------------------------------------------


class DomainEvent(SQLModel, table=True):
    """What happened, written in the transaction of the change it records (the outbox).

    Append-only: the worker reads it to run reactions (outbound webhooks) after commit."""

    __tablename__ = "domain_events"
    __table_args__ = (
        Index(None, "type", "subject"),
        Index(None, "partner_id", "id"),
    )

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    """Increasing: events sort by id, and a cursor is an id."""
    type: str = Field(max_length=64)
    """`noun.past_verb`, one of app.domain.events.CATALOGUE."""
    occurred_at: datetime = utc_column()
    recorded_at: datetime = utc_column()
    partner_id: uuid.UUID | None = Field(default=None)
    """The partner the event is about or belongs to; null for program-wide events."""
    subject: str = Field(max_length=300)
    """The main object, e.g. `registration:<uuid>`: with `type`, what makes a scheduled notice once-only."""
    refs: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    """The ids it concerns, by name."""
    version: int = 1
    """Version of the payload schema of this type."""
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class WorkerLease(SQLModel, table=True):
    """Work only one worker may do at a time (the store-event applier, each scheduled job run).

    Held until `expires_at`; a worker that dies loses it when that passes, and another takes it."""

    __tablename__ = "worker_leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str | None = Field(default=None, max_length=100)
    expires_at: datetime | None = utc_column(nullable=True)


class ScheduledJob(SQLModel, table=True):
    """A job the worker runs at its moment, and what its last run did (GET /v1/jobs)."""

    __tablename__ = "scheduled_jobs"

    name: str = Field(primary_key=True, max_length=64)
    next_run_at: datetime = utc_column()
    last_started_at: datetime | None = utc_column(nullable=True)
    last_finished_at: datetime | None = utc_column(nullable=True)
    last_outcome: str | None = Field(default=None, max_length=16)
    """`ok` or `failed`."""
    last_counts: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    last_error: str | None = Field(default=None, max_length=2000)
    runs: int = 0


class SchemaCompatibility(SQLModel, table=True):
    """One row per applied migration, written by the migration run itself (`app/db/compatibility.py`):
    the oldest application revision whose code still works against the schema after it (expand/contract).

    A build that does not know a migration reads it here, so an older build can tell whether it may
    keep serving and applying events once the database is ahead of it. Never changed incompatibly."""

    __tablename__ = "schema_compatibility"

    revision: str = Field(primary_key=True, max_length=32)
    oldest_compatible_revision: str = Field(max_length=32)
    down_revision: str | None = Field(default=None, max_length=200)
    """The revision(s) it follows, comma-separated; null for the first."""
    applied_at: datetime = utc_column()


class WebhookSubscription(SQLModel, table=True):
    """Where the worker sends domain events: a URL, the types it wants, whose events (outbound webhooks)."""

    __tablename__ = "webhook_subscriptions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner: str = Field(max_length=16)
    """`admin` (any event of its types, or one partner's) or `partner` (a partner's own subscription:
    only the types a partner may read, only its own events)."""
    partner_id: uuid.UUID | None = Field(default=None, foreign_key="partners.id", index=True)
    url: str = Field(max_length=2083)
    event_types: list[str] = Field(default_factory=list, sa_type=JSON)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=500)
    secret: str = Field(sa_type=Text)
    """The signing secret (`whsec_...`), encrypted with PARTNERS_SECRETS_KEY (Fernet)."""
    previous_secret: str | None = Field(default=None, sa_type=Text)
    """The secret before the last rotation, encrypted; it signs beside the new one until
    `previous_secret_expires_at`."""
    previous_secret_expires_at: datetime | None = utc_column(nullable=True)
    after_event_id: int = Field(default=0, sa_type=BigInteger)
    """The newest domain event when the subscription was made: it receives the events after it."""
    failing_since: datetime | None = utc_column(nullable=True)
    """The first failed attempt since the last delivered one; 5 days of failures disable it."""
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class WebhookDelivery(SQLModel, table=True):
    """One event to send to one subscription, until it is delivered or fails for good."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "subscription_id", "id"),
    )

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscriptions.id")
    event_id: int | None = Field(default=None, sa_type=BigInteger)
    """The domain event sent; null for a `ping`."""
    event_type: str = Field(max_length=64)
    message_id: str = Field(max_length=100)
    """`webhook-id`: the event id, the same on every attempt."""
    body: str = Field(sa_type=Text)
    """`{"type", "timestamp", "data"}` as sent (signed at each attempt)."""
    status: str = Field(max_length=16)
    """`pending` (due at `next_attempt_at`), `sending` (claimed until `claimed_until`), `delivered`, `failed`."""
    attempts: int = 0
    next_attempt_at: datetime | None = utc_column(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    last_attempt_at: datetime | None = utc_column(nullable=True)
    delivered_at: datetime | None = utc_column(nullable=True)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP call of a delivery: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    delivery_id: int = Field(sa_type=BigInteger, foreign_key="webhook_deliveries.id", index=True)
    attempted_at: datetime = utc_column()
    status_code: int | None = None
    latency_ms: int
    error: str | None = Field(default=None, max_length=1000)
    response_body: str | None = Field(default=None, sa_type=Text)
    """The first 1 KiB of the answer."""
    worker: str = Field(max_length=100)


class EventCursor(SQLModel, table=True):
    """How far a reader of the domain-event log has gone (the outbound fan-out)."""

    __tablename__ = "event_cursors"

    name: str = Field(primary_key=True, max_length=64)
    position: int = Field(default=0, sa_type=BigInteger)
