"""Partners, their declared identifiers and status history, and the directory's search text."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, SmallInteger, Text, event, text
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


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
    website: str | None = Field(default=None, sa_type=Text)
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
    published_website: str | None = Field(default=None, sa_type=Text)
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
