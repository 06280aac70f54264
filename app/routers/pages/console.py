"""The program console (`/console`), for the vendor's users by role."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import partners as partners_repo
from app.domain import dashboards, partners, people
from app.domain import mail as mail_domain
from app.domain.errors import DomainError, Forbidden
from app.domain.rules.partner_status import PartnerStatus, StatusAction
from app.domain.rules.roles import Kind, Permission, Role, may
from app.routers.deps import ClockDep, SessionDep, context
from app.routers.pages.common import (
    PostedBy,
    Viewer,
    actor_of,
    home_of,
    render,
    see,
)

router = APIRouter(include_in_schema=False)

# --- the program console ------------------------------------------------------------------------------------


async def _console(
    session: AsyncSession,
    now: datetime,
    viewer: people.Current,
    *,
    status_code: int = 200,
    notice: str | None = None,
    problem: str | None = None,
) -> Response:
    user = viewer.user
    if user.kind != Kind.VENDOR.value:
        return see(home_of(viewer))
    pending = [
        {"id": p.id, "company": p.company, "country": p.country, "applied": p.created_at.date().isoformat()}
        for p in await partners_repo.with_status(session, PartnerStatus.PENDING.value)
    ]
    glance = await dashboards.overview(session, now=now, start=None, end=None, top=0)
    most = max(glance.partners_by_level.values(), default=0) or 1
    levels = [
        {"name": name.title(), "count": count, "width": round(180 * count / most)}
        for name, count in glance.partners_by_level.items()
    ]
    figures = [
        ("Partners waiting for approval", glance.partners_by_status.get(PartnerStatus.PENDING.value, 0)),
        ("Statements overdue", glance.overdue_statements),
        ("Store events parked", sum(glance.parked_webhook_events.values())),
        ("Order flags open", sum(glance.order_flags.values())),
        ("Mail given up on", await mail_domain.failed_count(session)),
    ]
    return render(
        "console.html",
        status_code,
        user=user,
        csrf=viewer.row.csrf_token,
        area="console",
        pending=pending,
        levels=levels,
        figures=figures,
        may_approve=may(Role(user.role), Permission.PARTNERS_STATUS_WRITE),
        notice=notice,
        problem=problem,
    )


@router.get("/console", response_class=HTMLResponse)
async def console(session: SessionDep, clock: ClockDep, viewer: Viewer) -> Response:
    return await _console(session, clock.now(), viewer)


@router.post("/console/partners/{partner_id}/approve", response_class=HTMLResponse)
async def approve_partner(
    partner_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:
    actor = actor_of(posted)
    try:
        people.require(actor, Permission.PARTNERS_STATUS_WRITE)
        async with session.begin_nested():
            partner = await partners.change_status(
                session, context(request, actor.caller, clock), partner_id, StatusAction.APPROVE, reason
            )
    except DomainError as refusal:
        return await _console(
            session,
            clock.now(),
            posted,
            status_code=403 if isinstance(refusal, Forbidden) else 409,
            problem=refusal.detail,
        )
    notice = f"{partner.company} is approved; its contact is invited as owner."
    return await _console(session, clock.now(), posted, notice=notice)
