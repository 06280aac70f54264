"""Streamed CSV exports of partners, a partner's ledgers and the audit log, for spreadsheets."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import tables
from app.domain import audit, partners
from app.domain import status as status_domain
from app.errors import problem_responses
from app.routers import convert
from app.routers.admin import AuditAction, AuditActor, AuditObjectId, AuditObjectType, AuditSince, AuditUntil
from app.routers.csv_export import CSV_RESPONSE, model_row, streamed_csv
from app.routers.deps import AdminRead, PartnerOrAdminRead, SessionDep
from app.routers.fields import PartnerPath
from app.routers.partners import CountryFilter, CreatedFrom, CreatedTo, PartnerSearch, StatusFilter
from app.routers.schemas.ledgers import MoneyEntry, PointsEntry
from app.routers.schemas.partners import Partner
from app.routers.schemas.program import AuditEvent

router = APIRouter(prefix="/v1")


def _fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


@router.get(
    "/partners.csv",
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
    response_class=StreamingResponse,
    summary="Export partners (CSV)",
    tags=["partners"],
)
async def export_partners_csv(
    request: Request,
    session: SessionDep,
    _admin: AdminRead,
    status: StatusFilter = None,
    country: CountryFilter = None,
    q: PartnerSearch = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
) -> StreamingResponse:
    """Admin (read). Every partner matching the filters of `GET /v1/partners`, newest first."""

    async def fetch(s: AsyncSession, after: tables.Partner | None, limit: int) -> Sequence[tables.Partner]:
        return await partners.search(
            s,
            status=status,
            country=country,
            q=q or None,
            created_from=created_from,
            created_to=created_to,
            after=None if after is None else (after.created_at, after.id),
            limit=limit,
        )

    return await streamed_csv(
        request,
        session,
        header=_fields(Partner),
        fetch=fetch,
        to_row=lambda row: model_row(convert.partner(row)),
        filename="partners.csv",
    )


@router.get(
    "/partners/{partner_id}/points-entries.csv",
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 404, 422)},
    response_class=StreamingResponse,
    summary="Export the points ledger (CSV)",
    tags=["partner program"],
)
async def export_points_entries_csv(
    partner_id: PartnerPath, request: Request, session: SessionDep, _caller: PartnerOrAdminRead
) -> StreamingResponse:
    """Every points entry of the partner, newest first, with the columns of `GET .../points-entries`."""

    async def fetch(s: AsyncSession, after: tables.PointsEntry | None, limit: int) -> Sequence[tables.PointsEntry]:
        return await status_domain.points_entries(
            s, partner_id, before_id=None if after is None else after.id, limit=limit
        )

    return await streamed_csv(
        request,
        session,
        header=_fields(PointsEntry),
        fetch=fetch,
        to_row=lambda row: model_row(PointsEntry.model_validate(row, from_attributes=True)),
        filename=f"points-entries-{partner_id}.csv",
    )


@router.get(
    "/partners/{partner_id}/money-entries.csv",
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 404, 422)},
    response_class=StreamingResponse,
    summary="Export the commission ledger (CSV)",
    tags=["partner program"],
)
async def export_money_entries_csv(
    partner_id: PartnerPath, request: Request, session: SessionDep, _caller: PartnerOrAdminRead
) -> StreamingResponse:
    """Every money entry of the partner, newest first, with the columns of `GET .../money-entries`."""

    async def fetch(s: AsyncSession, after: tables.MoneyEntry | None, limit: int) -> Sequence[tables.MoneyEntry]:
        return await status_domain.money_entries(
            s, partner_id, before_id=None if after is None else after.id, limit=limit
        )

    return await streamed_csv(
        request,
        session,
        header=_fields(MoneyEntry),
        fetch=fetch,
        to_row=lambda row: model_row(MoneyEntry.model_validate(row, from_attributes=True)),
        filename=f"money-entries-{partner_id}.csv",
    )


@router.get(
    "/audit-events.csv",
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
    response_class=StreamingResponse,
    summary="Export the audit log (CSV)",
    tags=["audit"],
)
async def export_audit_events_csv(
    request: Request,
    session: SessionDep,
    _admin: AdminRead,
    actor: AuditActor = None,
    action: AuditAction = None,
    object_type: AuditObjectType = None,
    object_id: AuditObjectId = None,
    since: AuditSince = None,
    until: AuditUntil = None,
) -> StreamingResponse:
    """Admin (read). Every audit row matching the filters of `GET /v1/audit-events`, newest first;
    `before` and `after` as JSON."""

    async def fetch(s: AsyncSession, after: tables.AuditEvent | None, limit: int) -> Sequence[tables.AuditEvent]:
        return await audit.search(
            s,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            since=since,
            until=until,
            before_id=None if after is None else after.id,
            limit=limit,
        )

    return await streamed_csv(
        request,
        session,
        header=_fields(AuditEvent),
        fetch=fetch,
        to_row=lambda row: model_row(AuditEvent.model_validate(row, from_attributes=True)),
        filename="audit-events.csv",
    )
