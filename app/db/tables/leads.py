"""Inbound leads and their offers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column


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
