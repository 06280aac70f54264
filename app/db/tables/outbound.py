"""Outbound webhook subscriptions, deliveries, attempts and cursors."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


class WebhookSubscription(SQLModel, table=True):
    """Where the worker sends domain events: a URL, the types it wants, whose events (outbound webhooks)."""

    __tablename__ = "webhook_subscriptions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner: str = Field(max_length=16)
    """`admin` (any event of its types, or one partner's) or `partner` (a partner's own subscription:
    only the types a partner may read, only its own events)."""
    partner_id: uuid.UUID | None = Field(default=None, foreign_key="partners.id", index=True)
    url: str = Field(max_length=2083)
    event_types: list[str] = Field(default_factory=list, sa_type=JSON)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=500)
    secret: str = Field(sa_type=Text)
    """The signing secret (`whsec_...`), encrypted with PARTNERS_SECRETS_KEY (Fernet)."""
    previous_secret: str | None = Field(default=None, sa_type=Text)
    """The secret before the last rotation, encrypted; it signs beside the new one until
    `previous_secret_expires_at`."""
    previous_secret_expires_at: datetime | None = utc_column(nullable=True)
    after_event_id: int = Field(default=0, sa_type=BigInteger)
    """The newest domain event when the subscription was made: it receives the events after it."""
    failing_since: datetime | None = utc_column(nullable=True)
    """The first failed attempt since the last delivered one; 5 days of failures disable it."""
    created_at: datetime = utc_column()
    updated_at: datetime = utc_column()


class WebhookDelivery(SQLModel, table=True):
    """One event to send to one subscription, until it is delivered or fails for good."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "subscription_id", "id"),
    )

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscriptions.id")
    event_id: int | None = Field(default=None, sa_type=BigInteger)
    """The domain event sent; null for a `ping`."""
    event_type: str = Field(max_length=64)
    message_id: str = Field(max_length=100)
    """`webhook-id`: the event id, the same on every attempt."""
    body: str = Field(sa_type=Text)
    """`{"type", "timestamp", "data"}` as sent (signed at each attempt)."""
    status: str = Field(max_length=16)
    """`pending` (due at `next_attempt_at`), `sending` (claimed until `claimed_until`), `delivered`, `failed`."""
    attempts: int = 0
    next_attempt_at: datetime | None = utc_column(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()
    last_attempt_at: datetime | None = utc_column(nullable=True)
    delivered_at: datetime | None = utc_column(nullable=True)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP call of a delivery: when, what came back, how long it took."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    delivery_id: int = Field(sa_type=BigInteger, foreign_key="webhook_deliveries.id", index=True)
    attempted_at: datetime = utc_column()
    status_code: int | None = None
    latency_ms: int
    error: str | None = Field(default=None, max_length=1000)
    response_body: str | None = Field(default=None, sa_type=Text)
    """The first 1 KiB of the answer."""
    worker: str = Field(max_length=100)


class EventCursor(SQLModel, table=True):
    """How far a reader of the domain-event log has gone (the outbound fan-out)."""

    __tablename__ = "event_cursors"

    name: str = Field(primary_key=True, max_length=64)
    position: int = Field(default=0, sa_type=BigInteger)
