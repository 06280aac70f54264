"""Points and money ledgers, their balances and level changes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


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
