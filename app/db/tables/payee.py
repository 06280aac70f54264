"""Payee details (the partner's legal name, address, bank account and VAT standing), kept as a history,
and the self-billing agreement's versions and acceptances."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


class PayeeDetails(SQLModel, table=True):
    """One version of a partner's payee details: each change adds a row, the newest is in force.
    Append-only (the database refuses updates and deletes)."""

    __tablename__ = "payee_details"
    __table_args__ = (Index(None, "partner_id", "recorded_at", "id"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id")
    legal_name: str = Field(max_length=200)
    address_line1: str = Field(max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=100)
    city: str = Field(max_length=100)
    country: str = Field(max_length=2)
    """The payee's country: ISO 3166-1 alpha-2."""
    iban: str = Field(sa_type=Text)
    """The IBAN, compact, encrypted with PARTNERS_SECRETS_KEY (Fernet): never stored in clear."""
    bic: str = Field(sa_type=Text)
    """The BIC, compact, encrypted like the IBAN."""
    iban_masked: str = Field(max_length=16)
    """The IBAN's country and last four characters (`DE…3000`), what answers and the audit log show."""
    vat_id: str | None = Field(default=None, max_length=64)
    vat_registered: bool
    recorded_at: datetime = utc_column()
    recorded_by: str = Field(max_length=100)
    """Who made the change: `partner:<id>` or `admin:<key id>`."""
    bank_changed_at: datetime = utc_column()
    """When the bank details (IBAN or BIC) last changed, as of this version: its own time, or carried
    from the version before when they did not change."""
    payouts_held_until: datetime | None = utc_column(nullable=True)
    """Until when the partner's payouts are held because its bank details changed (PARTNERS_PAYOUT_HOLD_DAYS
    as it was then); null when no hold was set."""


class SelfBillingVersion(SQLModel, table=True):
    """A published version of the self-billing agreement: the vendor issues the partner's invoices."""

    __tablename__ = "self_billing_versions"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    version: str = Field(max_length=50, unique=True)
    title: str = Field(max_length=200)
    url: str | None = Field(default=None, sa_type=Text)
    published_at: datetime = utc_column(index=True)
    published_by: str = Field(max_length=100)


class SelfBillingAcceptance(SQLModel, table=True):
    """A partner's acceptance of a self-billing agreement version. Append-only."""

    __tablename__ = "self_billing_acceptances"
    __table_args__ = (UniqueConstraint("partner_id", "version_id"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    version_id: int = Field(sa_type=BigIntId, foreign_key="self_billing_versions.id")
    accepted_at: datetime = utc_column()
    accepted_by: str = Field(max_length=100)
    """`partner:<id>`, or `admin:<key id>` when an admin recorded the partner's acceptance."""
