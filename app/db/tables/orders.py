"""Orders, their lines, licences, refunds and the flags raised on them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


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
    standing_points: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})
    """The sum of its points entries, kept by the database's triggers as entries are written (never
    by the application): what it puts at risk while active and ending within the window (R03)."""


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"

    refund_id: str = Field(primary_key=True, max_length=255)
    order_id: str = Field(foreign_key="orders.order_id", max_length=255, index=True)
    refunded_at: datetime = utc_column()
    content_hash: str = Field(max_length=64)
    recorded_at: datetime = utc_column()


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
