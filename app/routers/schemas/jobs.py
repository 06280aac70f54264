"""API schemas — domain events, scheduled jobs and the store-event applier."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class DomainEvent(BaseModel):
    id: int = Field(description="Increasing: events sort by id.")
    type: str = Field(
        description="`noun.past_verb`; each type's payload schema, with an example, is "
        "`components/schemas/EventPayload.<type>`."
    )
    occurred_at: datetime = Field(description="When it happened.")
    recorded_at: datetime = Field(description="When the service recorded it.")
    partner_id: uuid.UUID | None = Field(description="The partner it concerns; null for a program-wide event.")
    subject: str = Field(description="The main object, e.g. `registration:<id>`.")
    refs: dict[str, str] = Field(description="Other ids it concerns, by name.")
    version: int = Field(description="Version of this type's payload schema.")
    payload: dict[str, object] = Field(description="The type's payload: `components/schemas/EventPayload.<type>`.")


class DomainEventPage(BaseModel):
    items: list[DomainEvent] = Field(description="Domain events on this page, by increasing id.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class Job(BaseModel):
    name: str = Field(description="The job's name.")
    description: str = Field(description="What it does, in a sentence.")
    every_seconds: int = Field(description="How often it runs, seconds.")
    next_run_at: datetime = Field(description="When it runs next.")
    last_started_at: datetime | None = Field(description="When its last run started; null before the first.")
    last_finished_at: datetime | None = Field(description="When its last run finished; null before the first.")
    last_outcome: Literal["ok", "failed"] | None = Field(description="`ok` or `failed`; null before the first run.")
    last_counts: dict[str, int] = Field(description="What its last run did, by name (e.g. `expired`: 3).")
    last_error: str | None = Field(description="Why its last run failed; null otherwise.")
    runs: int = Field(description="How many times it has run.")


class StoreEventApplier(BaseModel):
    accepted: int = Field(description="Store events waiting to be applied.")
    oldest_accepted_at: datetime | None = Field(description="When the oldest of them arrived (the worker's lag).")
    holder: str | None = Field(description="The worker holding the applier's lease, if any.")
    lease_expires_at: datetime | None = Field(description="When that lease ends unless renewed; null when none.")


class WorkerApplier(BaseModel):
    """Whether this build's workers apply store events and run jobs on the database as it stands."""

    state: Literal["running", "paused"] = Field(
        description="`paused`: the schema does not fit this build, so its workers apply nothing (see `reason`)."
    )
    reason: Literal["not_migrated", "schema_incompatible"] | None = Field(
        description="`not_migrated`: the database is behind this build; `schema_incompatible`: it is at a later "
        "migration that does not declare this build compatible. Null while running."
    )
    detail: str | None = Field(description="Why, in a sentence, when paused or when the database is ahead.")
    schema_revision: str | None = Field(description="The database's migration revision.")
    build_revision: str = Field(description="This build's latest migration revision.")
    oldest_compatible_revision: str | None = Field(
        description="When the database is ahead: the oldest application revision its revision declares compatible."
    )


class JobList(BaseModel):
    items: list[Job] = Field(description="The worker's jobs.")
    next_cursor: str | None = Field(description="Always null: every job fits on one page.")
    has_more: bool = Field(description="Always false: every job fits on one page.")
    store_events: StoreEventApplier = Field(description="The applier of store events: its backlog and lease.")
    applier: WorkerApplier = Field(description="Whether this build's workers run on the database as it stands.")
