"""The partner portal (`/portal`), for a partner's users by role: only their own partner's data."""

from __future__ import annotations

import uuid
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from app.db.repositories import partners as partners_repo
from app.domain import statements as statements_domain
from app.domain import status as status_domain
from app.domain.rules.roles import Kind, Permission, Role, may
from app.routers.deps import ClockDep, SessionDep
from app.routers.pages.common import (
    Viewer,
    home_of,
    money,
    render,
    see,
)
from app.routers.statements import statement_csv

router = APIRouter(include_in_schema=False)

# --- the partner portal ------------------------------------------------------------------------------------


@router.get("/portal", response_class=HTMLResponse)
async def portal(session: SessionDep, clock: ClockDep, viewer: Viewer) -> Response:
    user = viewer.user
    if user.kind != Kind.PARTNER.value or user.partner_id is None:
        return see(home_of(viewer))
    partner = await partners_repo.get(session, user.partner_id)
    assert partner is not None
    now = clock.now()
    standing = await status_domain.status(session, user.partner_id, now)
    balances = [(c, f"{a // 100:,}.{a % 100:02d}") for c, a in sorted(standing.commission_balances.items())]
    return render(
        "portal.html",
        user=user,
        csrf=viewer.row.csrf_token,
        area="portal",
        partner=partner,
        status=standing,
        balances=balances,
        at_risk_until=standing.at_risk_until.date().isoformat(),
    )


@router.get("/portal/ledger", response_class=HTMLResponse)
async def portal_ledger(
    session: SessionDep, viewer: Viewer, kind: Literal["points", "money"] = "points", before: int | None = None
) -> Response:
    """The partner's ledgers, newest first, a page at a time, each entry with its rule and why (R21)."""
    user = viewer.user
    if user.kind != Kind.PARTNER.value or user.partner_id is None:
        return see(home_of(viewer))
    partner = await partners_repo.get(session, user.partner_id)
    page: dict[str, Any] = {"user": user, "csrf": viewer.row.csrf_token, "area": "ledger", "partner": partner}
    page["kind"] = kind
    if not may(Role(user.role), Permission.LEDGER_READ):
        return render("ledger.html", 403, **page, rows=[], older=None, problem="Your role does not read the ledger.")
    zone = ZoneInfo(user.time_zone)
    entries: list[Any] = list(
        await (status_domain.points_entries if kind == "points" else status_domain.money_entries)(
            session, user.partner_id, before_id=before, limit=LEDGER_PAGE + 1
        )
    )
    rows = [
        {
            "when": e.effective_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "rule": e.rule,
            "why": e.explanation,
            "amount": f"{e.points:+,}" if kind == "points" else money(e),
        }
        for e in entries[:LEDGER_PAGE]
    ]
    older = entries[LEDGER_PAGE - 1].id if len(entries) > LEDGER_PAGE else None
    return render("ledger.html", **page, rows=rows, older=older)


LEDGER_PAGE = 50


@router.get("/portal/statements", response_class=HTMLResponse)
async def portal_statements(session: SessionDep, viewer: Viewer) -> Response:
    """The partner's statements, newest first, each downloadable as CSV (for the roles that read them)."""
    user = viewer.user
    if user.kind != Kind.PARTNER.value or user.partner_id is None:
        return see(home_of(viewer))
    partner = await partners_repo.get(session, user.partner_id)
    page: dict[str, Any] = {"user": user, "csrf": viewer.row.csrf_token, "area": "statements", "partner": partner}
    if not may(Role(user.role), Permission.STATEMENTS_READ):
        return render("statements.html", 403, **page, rows=[], problem="Your role does not read statements.")
    rows = [
        {
            "id": s.id,
            "quarter": s.quarter,
            "currency": s.currency,
            "status": s.status.replace("_", " "),
            "amount": f"{s.payable_amount // 100:,}.{s.payable_amount % 100:02d} {s.currency}",
            "payout_date": s.payout_date.date().isoformat(),
        }
        for s in await statements_domain.search(session, partner_id=user.partner_id)
    ]
    return render("statements.html", **page, rows=rows)


@router.get("/portal/statements/{statement_id}.csv")
async def portal_statement_csv(statement_id: uuid.UUID, session: SessionDep, viewer: Viewer) -> Response:
    """One of the partner's statements as CSV: the API's own download."""
    user = viewer.user
    if user.partner_id is None or not may(Role(user.role), Permission.STATEMENTS_READ):
        return see("/portal/statements")  # which says why
    return await statement_csv(session, user.partner_id, statement_id)
