"""Streamed CSV exports of partners, a partner's ledgers and the audit log, for spreadsheets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

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
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def _fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _export(
    path: str,
    *,
    summary: str,
    tags: list[str | Enum],
    errors: tuple[int, ...],
    name: str | None = None,
    description: str | None = None,
) -> Callable[[Endpoint], Endpoint]:
    """Declare a streamed CSV export at `path`; its operation id is `name` and its description
    `description`, or else the function's name and docstring."""
    return router.get(
        path,
        responses={**CSV_RESPONSE, **problem_responses(*errors)},
        response_class=StreamingResponse,
        summary=summary,
        tags=tags,
        name=name,
        description=description,
    )


@_export("/partners.csv", summary="Export partners (CSV)", tags=["partners"], errors=(401, 403, 422))
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


@dataclass(frozen=True)
class Ledger:
    """One of a partner's ledgers, as its CSV export needs it."""

    name: str
    """As in its path and file name: `points-entries`."""
    what: str
    """As the summary names it."""
    entry: str
    """As the description names one row."""
    model: type[PointsEntry] | type[MoneyEntry]
    read: Callable[..., Awaitable[Sequence[Any]]]
    """`(session, partner_id, *, before_id, limit)`: the entries, newest first."""


def _ledger_export(ledger: Ledger) -> None:
    """Declare the CSV export of one of a partner's ledgers (the partner's key, or an admin's)."""
    model = ledger.model

    @_export(
        f"/partners/{{partner_id}}/{ledger.name}.csv",
        summary=f"Export the {ledger.what} (CSV)",
        tags=["partner program"],
        errors=(401, 403, 404, 422),
        name=f"export_{ledger.name.replace('-', '_')}_csv",
        description=f"Every {ledger.entry} of the partner, newest first, with the columns of `GET .../{ledger.name}`.",
    )
    async def export(
        partner_id: PartnerPath, request: Request, session: SessionDep, _caller: PartnerOrAdminRead
    ) -> StreamingResponse:
        async def fetch(s: AsyncSession, after: Any, limit: int) -> Sequence[Any]:
            return await ledger.read(s, partner_id, before_id=None if after is None else after.id, limit=limit)

        return await streamed_csv(
            request,
            session,
            header=_fields(model),
            fetch=fetch,
            to_row=lambda row: model_row(model.model_validate(row, from_attributes=True)),
            filename=f"{ledger.name}-{partner_id}.csv",
        )


_ledger_export(Ledger("points-entries", "points ledger", "points entry", PointsEntry, status_domain.points_entries))
_ledger_export(Ledger("money-entries", "commission ledger", "money entry", MoneyEntry, status_domain.money_entries))


@_export("/audit-events.csv", summary="Export the audit log (CSV)", tags=["audit"], errors=(401, 403, 422))
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
