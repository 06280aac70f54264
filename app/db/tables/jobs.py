"""Domain events, the worker's lease, scheduled jobs and schema compatibility."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


class DomainEvent(SQLModel, table=True):
    """What happened, written in the transaction of the change it records (the outbox).

    Append-only: the worker reads it to run reactions (outbound webhooks) after commit."""

    __tablename__ = "domain_events"
    __table_args__ = (Index(None, "type", "subject"), Index(None, "partner_id", "id"))

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    """Increasing: events sort by id, and a cursor is an id."""
    type: str = Field(max_length=64)
    """`noun.past_verb`, one of app.domain.events.CATALOGUE."""
    occurred_at: datetime = utc_column()
    recorded_at: datetime = utc_column()
    partner_id: uuid.UUID | None = Field(default=None)
    """The partner the event is about or belongs to; null for program-wide events."""
    subject: str = Field(max_length=300)
    """The main object, e.g. `registration:<uuid>`: with `type`, what makes a scheduled notice once-only."""
    refs: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    """The ids it concerns, by name."""
    version: int = 1
    """Version of the payload schema of this type."""
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class WorkerLease(SQLModel, table=True):
    """Work only one worker may do at a time (the store-event applier, each scheduled job run).

    Held until `expires_at`; a worker that dies loses it when that passes, and another takes it."""

    __tablename__ = "worker_leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str | None = Field(default=None, max_length=100)
    expires_at: datetime | None = utc_column(nullable=True)


class ScheduledJob(SQLModel, table=True):
    """A job the worker runs at its moment, and what its last run did (GET /v1/jobs)."""

    __tablename__ = "scheduled_jobs"

    name: str = Field(primary_key=True, max_length=64)
    next_run_at: datetime = utc_column()
    last_started_at: datetime | None = utc_column(nullable=True)
    last_finished_at: datetime | None = utc_column(nullable=True)
    last_outcome: str | None = Field(default=None, max_length=16)
    """`ok` or `failed`."""
    last_counts: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    last_error: str | None = Field(default=None, max_length=2000)
    runs: int = 0


class SchemaCompatibility(SQLModel, table=True):
    """One row per applied migration, written by the migration run itself (`app/db/compatibility.py`):
    the oldest application revision whose code still works against the schema after it (expand/contract).

    A build that does not know a migration reads it here, so an older build can tell whether it may
    keep serving and applying events once the database is ahead of it. Never changed incompatibly."""

    __tablename__ = "schema_compatibility"

    revision: str = Field(primary_key=True, max_length=32)
    oldest_compatible_revision: str = Field(max_length=32)
    down_revision: str | None = Field(default=None, max_length=200)
    """The revision(s) it follows, comma-separated; null for the first."""
    applied_at: datetime = utc_column()
