"""Customers, their identifiers, deal registrations and partner relationships."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


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
