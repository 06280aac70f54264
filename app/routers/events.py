"""Domain events (admins: all; a partner: its own) and the worker's jobs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import WithJsonSchema

from app.db import tables
from app.domain import events
from app.domain.errors import Invalid
from app.errors import problem_responses
from app.routers import convert
from app.routers.deps import AdminRead, PartnerOrAdminRead, SessionDep
from app.routers.fields import Cursor, PartnerPath, page_size
from app.routers.schemas.jobs import DomainEvent, DomainEventPage, Job, JobList, StoreEventApplier, WorkerApplier
from app.worker import status as worker_status

router = APIRouter(prefix="/v1")

TypeFilter = Annotated[
    list[events.EventType] | None,
    Query(max_length=30, description="Only the events of these types (repeat the parameter, at most 30)."),
]
_PARTNER_TYPES = sorted(t for t in events.CATALOGUE if events.partner_may_read(t))
PartnerTypeFilter = Annotated[
    Annotated[
        list[events.EventType],
        WithJsonSchema({"type": "array", "items": {"type": "string", "enum": _PARTNER_TYPES}, "maxItems": 30}),
    ]
    | None,
    Query(
        max_length=30,
        description="Only the events of these types, each one a partner may read (others: "
        "`event_type_not_for_partners`); repeat the parameter, at most 30.",
    ),
]


def _page(rows: Sequence[tables.DomainEvent], limit: int) -> DomainEventPage:
    page = rows[:limit]
    return DomainEventPage(
        items=[DomainEvent.model_validate(r, from_attributes=True) for r in page],
        next_cursor=convert.encode_cursor(page[-1].id) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


@router.get(
    "/events",
    tags=["events"],
    responses=problem_responses(401, 403, 422),
    summary="List domain events",
)
async def list_events(
    session: SessionDep,
    _admin: AdminRead,
    type: TypeFilter = None,
    partner_id: Annotated[uuid.UUID | None, Query(description="Only the events about this partner.")] = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> DomainEventPage:
    """Admin (read). Oldest first from the cursor, so a reader follows the log forward."""
    rows = await events.search(
        session,
        types=type or None,
        partner_id=partner_id,
        after_id=convert.decode_int_cursor(cursor),
        limit=limit + 1,
    )
    return _page(rows, limit)


@router.get(
    "/partners/{partner_id}/events",
    tags=["events"],
    responses=problem_responses(401, 403, 404, 422),
    summary="List a partner's events",
)
async def list_partner_events(
    partner_id: PartnerPath,
    session: SessionDep,
    _caller: PartnerOrAdminRead,
    type: PartnerTypeFilter = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> DomainEventPage:
    """The partner (or an admin): its own `partner.*` events, its registrations', leads' and
    statements' events, and `terms.took_effect`; never another partner's. Oldest first."""
    refused = sorted(t for t in type or [] if not events.partner_may_read(t))
    if refused:
        raise Invalid(
            f"Partners do not receive {', '.join(refused)} events.", code="event_type_not_for_partners", field="type"
        )
    rows = await events.for_partner(
        session, partner_id, types=type or None, after_id=convert.decode_int_cursor(cursor), limit=limit + 1
    )
    return _page(rows, limit)


@router.get("/jobs", tags=["jobs"], responses=problem_responses(401, 403, 422), summary="The worker's jobs")
async def list_jobs(session: SessionDep, _admin: AdminRead) -> JobList:
    """Admin (read). Each scheduled job's last run, outcome, counts and next run, the store-event
    applier's backlog, and whether this build's workers apply anything (`applier`: paused while the
    database's schema does not fit this build, with the reason)."""
    status = await worker_status.read(session)
    schema = status.schema
    items: list[dict[str, Any]] = [
        {**job.__dict__, "description": spec.description, "every_seconds": int(spec.every.total_seconds())}
        for job, spec in status.jobs
    ]
    return JobList(
        items=[Job.model_validate(item) for item in items],
        next_cursor=None,
        has_more=False,
        store_events=StoreEventApplier.model_validate(status.applier.__dict__),
        applier=WorkerApplier(
            state="running" if schema.ready else "paused",
            reason=None if schema.ready else schema.code,
            detail=schema.explain() if schema.ahead or not schema.ready else None,
            schema_revision=schema.schema_revision,
            build_revision=schema.build_revision,
            oldest_compatible_revision=schema.oldest_compatible_revision,
        ),
    )
