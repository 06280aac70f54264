"""What the HTTP edge keeps: rate-limit windows and idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column


class RateLimitBucket(SQLModel, table=True):
    """A fixed-window counter shared by every worker (the database is the one shared place)."""

    __tablename__ = "rate_limit_buckets"

    key: str = Field(primary_key=True, max_length=200)
    hits: int = 0
    expires_at: datetime = utc_column(index=True)


class IdempotencyRecord(SQLModel, table=True):
    """An `Idempotency-Key` and the answer given to it (IETF draft semantics)."""

    __tablename__ = "idempotency_records"

    actor: str = Field(primary_key=True, max_length=100)
    key: str = Field(primary_key=True, max_length=255)
    method: str = Field(max_length=8)
    path: str = Field(max_length=500)
    request_hash: str = Field(max_length=64)
    status: str = Field(max_length=16)
    """`in_flight` or `done`."""
    response_status: int | None = None
    response_body: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = utc_column()
    claim_token: str | None = Field(default=None, max_length=32)
    """The request that holds the key now. A request commits its answer (and its work) only while
    its own token is still here: once a retry has taken the key over, the original's work rolls back."""
    claimed_at: datetime | None = utc_column(nullable=True)
    """When the holder claimed the key; past the lease, a retry may take it over (a killed worker)."""
