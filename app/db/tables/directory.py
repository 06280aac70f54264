"""Directory reviews and not-for-resale licences."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


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
    website: str | None = Field(default=None, sa_type=Text)
    submitted_at: datetime = utc_column()
    status: str = Field(max_length=16)
    """`pending`, then `approved`, `rejected`, `superseded` (newer text sent) or `resolved` (name changed)."""
    decided_at: datetime | None = utc_column(nullable=True)
    decided_by: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=1000)


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
