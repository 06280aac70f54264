"""SQLModel table models. API schemas live in the routers' schema modules, never here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, MetaData, UniqueConstraint
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

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    company: str = Field(max_length=200)
    country: str = Field(max_length=2, index=True)
    """ISO 3166-1 alpha-2, upper case."""
    contact_name: str = Field(max_length=200)
    contact_email: str = Field(max_length=320, unique=True)
    """Lower-cased; one partner per contact address."""
    website: str | None = Field(default=None, max_length=2083)
    languages: list[str] = Field(default_factory=list, sa_type=JSON)
    """ISO 639-1 codes."""
    status: str = Field(max_length=16, index=True)
    """Current status, kept in step with `partner_status_changes` (the history is the truth)."""
    created_at: datetime = utc_column(index=True)
    updated_at: datetime = utc_column()


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
