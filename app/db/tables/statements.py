"""Quarter closes, statements, their lines and transitions (R16)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


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
