"""Store webhook events received (and the ones refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Text
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


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
