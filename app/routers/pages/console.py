"""The program console (`/console`), for the vendor's users by role: the overview, partners and their
history, the review queues, statements and payout runs, and the program terms' versions.

Every page calls the use cases the API calls. What a role may do is the role table's (`may` and
`people.require`); a role without the permission sees no action, and a form it posts anyway is answered
403 with why. A use case runs in a savepoint (`attempt`), so a refusal leaves nothing it wrote but what
the rule keeps on purpose; the page says the refusal in the API's words, next to the field it names, with
what was typed."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.compatibility import schema_state
from app.db.repositories import console as console_repo
from app.db.repositories import partners as partners_repo
from app.db.tables import PayoutRunStatement
from app.db.tables import TermsPreview as TermsPreviewRow
from app.domain import dashboards, directory, leads, order_flags, partners, payouts, people, terms, terms_preview
from app.domain import mail as mail_domain
from app.domain import registrations as registrations_domain
from app.domain import statements as statements_domain
from app.domain import status as status_domain
from app.domain import webhooks as webhooks_domain
from app.domain.agreements import acceptances
from app.domain.errors import DomainError, Invalid, NotFound, Unavailable
from app.domain.rules import terms_preview as preview_rules
from app.domain.rules.names import Rule
from app.domain.rules.partner_status import PartnerStatus, StatusAction, next_status
from app.domain.rules.quarters import Quarter
from app.domain.rules.roles import Kind, Permission, Role, may
from app.domain.rules.terms import LEVEL_ORDER, Terms
from app.routers import convert
from app.routers.deps import ClockDep, SessionDep, SettingsDep, context
from app.routers.pages.common import (
    INVALID_FORM,
    PostedBy,
    Viewer,
    actor_of,
    attempt,
    home_of,
    render,
    see,
    status_of,
    validated,
)
from app.routers.payouts import get_payout_run_sepa
from app.routers.previews import preview_partners_csv
from app.routers.schemas.common import ReasonRequest
from app.routers.schemas.orders import ResolveRequest
from app.routers.schemas.partners import StatusChangeRequest
from app.routers.schemas.payouts import PayoutRunRequest, TransferReturn
from app.routers.schemas.previews import TermsPreviewRequest
from app.routers.schemas.statements import Payment
from app.routers.statements import statement_csv

router = APIRouter(include_in_schema=False)

SHORT = 5
"""Rows of each section of a partner's history page; the section's own page has the rest."""
PAGE = 25
"""Rows of a list page."""
STATEMENT_STATES = ("draft", "approved", "in_payment", "paid")

# --- what every console page shares ------------------------------------------------------------------------


def _zone(viewer: people.Current) -> ZoneInfo:
    return ZoneInfo(viewer.user.time_zone)


def _when(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def _day(moment: datetime | date | None, zone: ZoneInfo) -> str:
    if moment is None:
        return ""
    return (moment.astimezone(zone).date() if isinstance(moment, datetime) else moment).isoformat()


def _minor(amount: int, currency: str = "") -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100:,}.{abs(amount) % 100:02d}{' ' + currency if currency else ''}".strip()


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _row_id(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) <= 2**62 else None


def _page(template: str, viewer: people.Current, area: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    user = viewer.user
    return render(template, status_code, user=user, csrf=viewer.row.csrf_token, area=area, **values)


def _missing(viewer: people.Current, area: str, detail: str) -> HTMLResponse:
    """An id that names nothing: 404, with the API's wording."""
    return _page("console_missing.html", viewer, area, 404, problem=detail)


def _may(viewer: people.Current, permission: Permission) -> bool:
    return may(Role(viewer.user.role), permission)


def _partner_user(viewer: people.Current) -> Response | None:
    """A partner's user has no console: its home is the portal."""
    return see(home_of(viewer)) if viewer.user.kind != Kind.VENDOR.value else None


def _link(text: str, href: str) -> dict[str, str]:
    return {"text": text, "href": href}


def _query(**values: Any) -> str:
    kept = {k: v for k, v in values.items() if v not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""


def _bars(rows: Sequence[tuple[str, int, str, list[str]]]) -> list[dict[str, Any]]:
    """A chart's bars: (label, value, value as shown, the table's cells) scaled to the widest."""
    most = max((abs(v) for _, v, _, _ in rows), default=0) or 1
    return [
        {"label": label, "width": round(150 * abs(value) / most), "shown": shown, "cells": cells}
        for label, value, shown, cells in rows
    ]


# --- the overview ------------------------------------------------------------------------------------------


async def _console(
    session: AsyncSession,
    now: datetime,
    viewer: people.Current,
    *,
    status_code: int = 200,
    notice: str | None = None,
    problem: str | None = None,
) -> Response:
    if (away := _partner_user(viewer)) is not None:
        return away
    user = viewer.user
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
    failed_mail = await console_repo.failed_mail(session)
    figures = [
        ("Partners waiting for approval", glance.partners_by_status.get(PartnerStatus.PENDING.value, 0)),
        ("Statements overdue", glance.overdue_statements),
        ("Store events parked", sum(glance.parked_webhook_events.values())),
        ("Order flags open", sum(glance.order_flags.values())),
        ("Mail given up on", await mail_domain.failed_count(session)),
    ]
    overdue = Counter((s.quarter, s.status) for s in await statements_domain.overdue(session, now, limit=10_000))
    charts = [
        {
            "key": "points",
            "title": "Active partners by points",
            "headers": ["Points", "Partners"],
            "empty": "No active partner yet.",
            "bars": _bars([(band, n, str(n), [band, str(n)]) for band, n in glance.points_distribution]),
        },
        {
            "key": "commission",
            "title": "Commission accrued per quarter",
            "headers": ["Quarter", "Accrued", "Approved", "In payment", "Paid"],
            "empty": "No commission yet.",
            "bars": _bars(
                [
                    (
                        f"{c['quarter']} {c['currency']}",
                        c["accrued"],
                        _minor(c["accrued"]),
                        [
                            f"{c['quarter']} {c['currency']}",
                            *(_minor(c[k]) for k in ("accrued", "payable", "in_payment", "paid")),
                        ],
                    )
                    for c in glance.commissions
                ]
            ),
        },
        {
            "key": "overdue",
            "title": "Overdue statements by quarter",
            "headers": ["Quarter", "Status", "Statements"],
            "empty": "No statement is overdue.",
            "bars": _bars(
                [
                    (f"{q} {s.replace('_', ' ')}", n, str(n), [q, s.replace("_", " "), str(n)])
                    for (q, s), n in sorted(overdue.items(), reverse=True)
                ]
            ),
        },
        {
            "key": "deliveries",
            "title": "Failed webhook deliveries by subscription",
            "headers": ["Subscription", "Enabled", "Failed"],
            "empty": "No webhook delivery has failed.",
            "bars": _bars(
                [
                    (
                        f.url.split("://", 1)[-1][:18],
                        f.failed,
                        str(f.failed),
                        [f.url, "yes" if f.enabled else "no", str(f.failed)],
                    )
                    for f in await console_repo.failed_deliveries(session)
                ]
            ),
        },
        {
            "key": "mail",
            "title": "Mail given up on, by kind",
            "headers": ["Kind", "Messages"],
            "empty": "No mail has failed.",
            "bars": _bars(
                [(t.replace("_", " ")[:18], n, str(n), [t.replace("_", " "), str(n)]) for t, n in failed_mail.items()]
            ),
        },
    ]
    return _page(
        "console.html",
        viewer,
        "console",
        status_code,
        pending=pending,
        levels=levels,
        figures=figures,
        charts=charts,
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
    if (away := _partner_user(posted)) is not None:
        return away
    actor = actor_of(posted)
    try:
        people.require(actor, Permission.PARTNERS_STATUS_WRITE)
        partner = await attempt(
            session,
            lambda: partners.change_status(
                session, context(request, actor.caller, clock), partner_id, StatusAction.APPROVE, reason
            ),
        )
    except DomainError as refusal:
        return await _console(session, clock.now(), posted, status_code=status_of(refusal), problem=refusal.detail)
    notice = f"{partner.company} is approved; its contact is invited as owner."
    return await _console(session, clock.now(), posted, notice=notice)


# --- partners ----------------------------------------------------------------------------------------------


@router.get("/console/partners", response_class=HTMLResponse)
async def console_partners(
    session: SessionDep,
    viewer: Viewer,
    q: str = "",
    status: str = "",
    level: str = "",
    country: str = "",
    cursor: str = "",
) -> Response:
    """Partners by company text, status, level and country, newest first, a page at a time."""
    if (away := _partner_user(viewer)) is not None:
        return away
    zone = _zone(viewer)
    q, country = q.strip()[:200], country.strip().upper()
    errors: dict[str, str] = {}
    if status and status not in {s.value for s in PartnerStatus}:
        errors["status"] = f"{status!r} is not a partner status."
    if level and level not in {lv.value for lv in LEVEL_ORDER}:
        errors["level"] = f"{level!r} is not a level."
    if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
        errors["country"] = f"{country!r} is not a country code of two letters (ISO 3166-1), e.g. FR."
    after = None
    try:
        after = convert.decode_time_id_cursor(cursor or None)
    except Invalid as refusal:
        errors["cursor"] = refusal.detail
    rows: list[console_repo.PartnerRow] = []
    if not errors:
        rows = await console_repo.partners(
            session,
            q=q or None,
            status=status or None,
            level=level or None,
            country=country or None,
            after=after,
            limit=PAGE + 1,
        )
    page = rows[:PAGE]
    older = None
    if len(rows) > PAGE:
        last = page[-1].partner
        older = "/console/partners" + _query(
            q=q, status=status, level=level, country=country, cursor=convert.encode_cursor(last.created_at, last.id)
        )
    return _page(
        "console_partners.html",
        viewer,
        "partners",
        422 if errors else 200,
        values={"q": q, "status": status, "level": level, "country": country},
        statuses=[s.value for s in PartnerStatus],
        levels=[lv.value for lv in LEVEL_ORDER],
        errors=errors,
        problem=errors.get("cursor"),
        rows=[
            {
                "id": r.partner.id,
                "company": r.partner.company,
                "country": r.partner.country,
                "status": r.partner.status,
                "level": r.level.title(),
                "points": f"{r.points:,}",
                "registered": _day(r.partner.created_at, zone),
            }
            for r in page
        ],
        older=older,
        first=bool(cursor),
    )


SECTIONS = {
    "status": "Status changes",
    "agreements": "Agreement acceptances",
    "levels": "Level changes",
    "points": "Points ledger",
    "money": "Money ledger",
    "registrations": "Registrations",
    "leads": "Lead offers",
    "statements": "Statements",
}


async def _section_rows(
    session: AsyncSession, section: str, partner_id: uuid.UUID, now: datetime, zone: ZoneInfo, *, before: int | None
) -> tuple[list[str], list[list[Any]]]:
    """A history section's column headers and its rows, newest first (the ledgers: a page of PAGE + 1
    from `before`; the others: all of them)."""
    if section == "status":
        history = list(reversed(await partners.status_history(session, partner_id)))
        return ["When", "From", "To", "Reason", "By"], [
            [_when(h.effective_at, zone), h.from_status or "", h.to_status, h.reason, h.actor] for h in history
        ]
    if section == "agreements":
        accepted = list(reversed(await acceptances(session, partner_id)))
        return ["Version", "Accepted"], [[name, _when(row.accepted_at, zone)] for row, name in accepted]
    if section == "levels":
        changes = list(reversed(await status_domain.level_history(session, partner_id)))
        return ["When", "From", "To", "Points after", "Why"], [
            [
                _when(c.changed_at, zone),
                c.from_level.title(),
                c.to_level.title(),
                f"{c.points_after:,}",
                f"terms version {c.terms_version} took effect"
                if c.terms_version is not None
                else f"points entry {c.points_entry_id}",
            ]
            for c in changes
        ]
    if section == "points":
        points = await status_domain.points_entries(session, partner_id, before_id=before, limit=PAGE + 1)
        return ["When", "Points", "Rule", "Why", "Terms"], [
            [_when(e.effective_at, zone), f"{e.points:+,}", e.rule, e.explanation, str(e.terms_version), e.id]
            for e in points
        ]
    if section == "money":
        money = await status_domain.money_entries(session, partner_id, before_id=before, limit=PAGE + 1)
        return ["When", "Amount", "Rule", "Why", "Terms"], [
            [
                _when(e.effective_at, zone),
                ("+" if e.amount >= 0 else "") + _minor(e.amount, e.currency),
                e.rule,
                e.explanation,
                str(e.terms_version),
                e.id,
            ]
            for e in money
        ]
    if section == "registrations":
        rows = await registrations_domain.for_partner(session, partner_id, now=now)
        return ["Customer", "Country", "State", "Registered", "Expires"], [
            [
                r.company,
                r.country,
                registrations_domain.effective_state(r, now),
                _when(r.registered_at, zone),
                _when(r.expires_at, zone),
            ]
            for r in rows
        ]
    if section == "leads":
        offers = list(await leads.partner_offers(session, partner_id, None))
        return ["Lead", "State", "Offered", "Deadline", "Why this partner", "Reason"], [
            [
                str(o.lead_id)[:8],
                o.state,
                _when(o.offered_at, zone),
                _when(o.deadline, zone),
                o.rank_reason,
                o.reason or "",
            ]
            for o in offers
        ]
    rows_s = await statements_domain.search(session, partner_id=partner_id)
    return ["Quarter", "Status", "Payable", "Payout date", "Lines"], [
        [
            s.quarter,
            s.status.replace("_", " "),
            _minor(s.payable_amount, s.currency),
            _day(s.payout_date, zone),
            _link("CSV", f"/console/statements/{s.id}.csv"),
        ]
        for s in rows_s
    ]


async def _partner_page(
    session: AsyncSession,
    now: datetime,
    viewer: people.Current,
    partner_id: uuid.UUID,
    *,
    status_code: int = 200,
    **values: Any,
) -> Response:
    zone = _zone(viewer)
    try:
        partner = await partners.get(session, partner_id)
    except NotFound as missing:
        return _missing(viewer, "partners", missing.detail)
    standing = await status_domain.status(session, partner_id, now)
    sections = []
    for key, title in SECTIONS.items():
        headers, rows = await _section_rows(session, key, partner_id, now, zone, before=None)
        if key in ("points", "money"):
            rows = [r[:-1] for r in rows]
        sections.append(
            {
                "key": key,
                "title": title,
                "headers": headers,
                "rows": rows[:SHORT],
                "more": f"/console/partners/{partner_id}/history/{key}" if len(rows) > SHORT else None,
            }
        )
    current = PartnerStatus(partner.status)
    actions = [a for a in StatusAction if next_status(current, a) is not None]
    return _page(
        "console_partner.html",
        viewer,
        "partners",
        status_code,
        partner=partner,
        level=standing.level.value.title(),
        points=f"{standing.active_points:,}",
        balances=[_minor(amount, currency) for currency, amount in sorted(standing.commission_balances.items())],
        registered=_day(partner.created_at, zone),
        sections=sections,
        actions=[{"value": a.value, "label": f"{a.value.capitalize()} {partner.company}"} for a in actions],
        may_change=_may(viewer, Permission.PARTNERS_STATUS_WRITE),
        **{"values": {}, **values},
    )


@router.get("/console/partners/{partner_id}", response_class=HTMLResponse)
async def console_partner(partner_id: str, session: SessionDep, clock: ClockDep, viewer: Viewer) -> Response:
    """A partner's whole history: status and its changes with reasons, agreement acceptances, level
    changes, ledgers, registrations, lead offers and statements; each section's newest rows."""
    if (away := _partner_user(viewer)) is not None:
        return away
    pid = _uuid(partner_id)
    if pid is None:
        return _missing(viewer, "partners", f"No partner {partner_id}.")
    return await _partner_page(session, clock.now(), viewer, pid)


@router.get("/console/partners/{partner_id}/history/{section}", response_class=HTMLResponse)
async def console_partner_section(
    partner_id: str, section: str, session: SessionDep, clock: ClockDep, viewer: Viewer, page: int = 1, before: str = ""
) -> Response:
    """One section of a partner's history, a page at a time (the ledgers: older than `before`)."""
    if (away := _partner_user(viewer)) is not None:
        return away
    pid = _uuid(partner_id)
    if pid is None or section not in SECTIONS:
        return _missing(viewer, "partners", f"No partner {partner_id}." if pid is None else f"No section {section}.")
    try:
        partner = await partners.get(session, pid)
    except NotFound as missing:
        return _missing(viewer, "partners", missing.detail)
    zone, now = _zone(viewer), clock.now()
    base = f"/console/partners/{pid}/history/{section}"
    older: str | None = None
    if section in ("points", "money"):
        headers, rows = await _section_rows(
            session, section, pid, now, zone, before=_row_id(before) if before else None
        )
        if len(rows) > PAGE:
            older = base + _query(before=rows[PAGE - 1][-1])
        rows = [r[:-1] for r in rows[:PAGE]]
    else:
        headers, rows = await _section_rows(session, section, pid, now, zone, before=None)
        page = max(page, 1)
        if len(rows) > page * PAGE:
            older = base + _query(page=page + 1)
        rows = rows[(page - 1) * PAGE : page * PAGE]
    return _page(
        "console_partner_section.html",
        viewer,
        "partners",
        partner=partner,
        section={"key": section, "title": SECTIONS[section], "headers": headers, "rows": rows},
        older=older,
    )


@router.post("/console/partners/{partner_id}/status", response_class=HTMLResponse)
async def change_partner_status(
    partner_id: str,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    action: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Approve, suspend, reinstate or terminate the partner, with the reason kept in its history."""
    if (away := _partner_user(posted)) is not None:
        return away
    pid = _uuid(partner_id)
    if pid is None:
        return _missing(posted, "partners", f"No partner {partner_id}.")
    field = f"reason-{action}"
    kept = {field: reason}
    actor = actor_of(posted)
    try:
        people.require(actor, Permission.PARTNERS_STATUS_WRITE)
        chosen = next((a for a in StatusAction if a.value == action), None)
        if chosen is None:
            raise Invalid(f"{action!r} is not a change of status.", code="validation_failed")
        body, errors = validated(StatusChangeRequest, {"reason": reason})
        if body is None:
            return await _partner_page(
                session,
                clock.now(),
                posted,
                pid,
                status_code=422,
                problem=errors["reason"],
                errors={field: errors["reason"]},
                values=kept,
            )
        partner = await attempt(
            session,
            lambda: partners.change_status(session, context(request, actor.caller, clock), pid, chosen, body.reason),
        )
    except DomainError as refusal:
        if isinstance(refusal, NotFound):
            return _missing(posted, "partners", refusal.detail)
        return await _partner_page(
            session,
            clock.now(),
            posted,
            pid,
            status_code=status_of(refusal),
            problem=refusal.detail,
            errors={field: refusal.detail} if refusal.extra.get("field") == "reason" else {},
            values=kept,
        )
    notice = f"{partner.company} is {StatusAction(action).past_tense}."
    return await _partner_page(session, clock.now(), posted, pid, notice=notice)


# --- the review queues -------------------------------------------------------------------------------------


async def _reviews_page(
    session: AsyncSession,
    viewer: people.Current,
    *,
    status_code: int = 200,
    events_before: str = "",
    flags_before: str = "",
    texts_before: str = "",
    **values: Any,
) -> Response:
    zone = _zone(viewer)
    parked = list(
        await webhooks_domain.search(
            session, status="parked", reason_code=None, before_id=_row_id(events_before), limit=PAGE + 1
        )
    )
    flags = list(
        await order_flags.search(session, kind=None, resolved=False, before_id=_row_id(flags_before), limit=PAGE + 1)
    )
    texts = list(
        await directory.reviews(
            session, status="pending", kind=None, partner_id=None, before_id=_row_id(texts_before), limit=PAGE + 1
        )
    )
    companies = await partners_repo.companies(
        session, [r.partner_id for r in texts] + [f.partner_id for f in flags if f.partner_id]
    )

    def older(rows: list[Any], name: str) -> str | None:
        return "/console/reviews" + _query(**{name: rows[PAGE - 1].id}) if len(rows) > PAGE else None

    return _page(
        "console_reviews.html",
        viewer,
        "reviews",
        status_code,
        may_review=_may(viewer, Permission.REVIEWS_WRITE),
        events=[
            {
                "id": e.id,
                "type": e.event_type,
                "subject": e.subject,
                "reason_code": e.reason_code or "",
                "reason": e.reason or "",
                "received": _when(e.received_at, zone),
                "attempts": e.attempts,
            }
            for e in parked[:PAGE]
        ],
        events_older=older(parked, "events_before"),
        flags=[
            {
                "id": f.id,
                "kind": f.kind.replace("_", " "),
                "order_id": f.order_id,
                "partner_id": f.partner_id,
                "company": companies.get(f.partner_id, "") if f.partner_id else "",
                "detail": f.detail,
                "recorded": _when(f.recorded_at, zone),
            }
            for f in flags[:PAGE]
        ],
        flags_older=older(flags, "flags_before"),
        texts=[
            {
                "id": r.id,
                "kind": r.kind.replace("_", " "),
                "partner_id": r.partner_id,
                "company": companies.get(r.partner_id, ""),
                "proposed": [
                    (name, value)
                    for name, value in (
                        ("Company", r.company),
                        ("Website", r.website),
                        ("Description", r.description),
                        ("Services", ", ".join(r.services)),
                    )
                    if value
                ],
                "submitted": _when(r.submitted_at, zone),
                "approvable": r.kind != "company_name",
            }
            for r in texts[:PAGE]
        ],
        texts_older=older(texts, "texts_before"),
        **{"values": {}, "errors": {}, **values},
    )


@router.get("/console/reviews", response_class=HTMLResponse)
async def console_reviews(
    session: SessionDep, viewer: Viewer, events_before: str = "", flags_before: str = "", texts_before: str = ""
) -> Response:
    """What waits for someone: parked store events, open order flags and directory text to review."""
    if (away := _partner_user(viewer)) is not None:
        return away
    return await _reviews_page(
        session, viewer, events_before=events_before, flags_before=flags_before, texts_before=texts_before
    )


async def _review_action(
    session: AsyncSession,
    posted: people.Current,
    item_id: str,
    what: str,
    work: Callable[[int], Awaitable[str]],
    *,
    field: str | None = None,
    kept: dict[str, str] | None = None,
) -> Response:
    """Run one review use case (REVIEWS_WRITE) in a savepoint and answer with the queues: the notice it
    returns, or the refusal with the API's words (next to `field` when it names the reason)."""
    if (away := _partner_user(posted)) is not None:
        return away
    number = _row_id(item_id)
    if number is None:
        return _missing(posted, "reviews", f"No {what} {item_id}.")
    try:
        people.require(actor_of(posted), Permission.REVIEWS_WRITE)
        notice = await attempt(session, lambda: work(number))
    except DomainError as refusal:
        if isinstance(refusal, NotFound):
            return _missing(posted, "reviews", refusal.detail)
        named = field is not None and refusal.extra.get("field") == "reason"
        return await _reviews_page(
            session,
            posted,
            status_code=status_of(refusal),
            problem=refusal.detail,
            errors={field: refusal.detail} if named and field else {},
            values=kept or {},
        )
    return await _reviews_page(session, posted, notice=notice)


def _reason_or_refuse(reason: str, model: type[BaseModel] = ReasonRequest) -> str:
    body, errors = validated(model, {"reason": reason})
    if body is None:
        raise Invalid(errors["reason"], code="validation_failed", field="reason")
    value: str = getattr(body, "reason")  # noqa: B009 - any model with a reason
    return value


@router.post("/console/reviews/events/{event_id}/replay", response_class=HTMLResponse)
async def replay_event(
    event_id: str, request: Request, session: SessionDep, clock: ClockDep, posted: PostedBy
) -> Response:
    """Apply a parked store event again, after its cause was fixed (as the API's replay)."""

    async def work(number: int) -> str:
        state = await schema_state(request.app.state.engine)
        if not state.ready:
            raise Unavailable(state.explain(), code="schema_incompatible", retry_after=30)
        receipt = await webhooks_domain.replay(session, context(request, actor_of(posted).caller, clock), number)
        if receipt.status == "parked":
            return f"Store event {number} is still parked: {receipt.reason}"
        return f"Store event {number} is {receipt.status}."

    return await _review_action(session, posted, event_id, "webhook event", work)


@router.post("/console/reviews/flags/{flag_id}/resolve", response_class=HTMLResponse)
async def resolve_flag(
    flag_id: str,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Close an order flag with the reason; nothing is re-rated."""
    field = f"reason-flag-{flag_id}"

    async def work(number: int) -> str:
        text = _reason_or_refuse(reason, ResolveRequest)
        await order_flags.resolve(session, context(request, actor_of(posted).caller, clock), number, reason=text)
        return f"Order flag {number} is resolved."

    return await _review_action(session, posted, flag_id, "order flag", work, field=field, kept={field: reason})


@router.post("/console/reviews/directory/{review_id}/approve", response_class=HTMLResponse)
async def approve_text(
    review_id: str, request: Request, session: SessionDep, clock: ClockDep, posted: PostedBy
) -> Response:
    """Publish the reviewed text, or company name and website, in the directory (R18)."""

    async def work(number: int) -> str:
        await directory.approve_review(session, context(request, actor_of(posted).caller, clock), number)
        return f"Directory review {number} is approved: the directory shows it."

    return await _review_action(session, posted, review_id, "directory review", work)


@router.post("/console/reviews/directory/{review_id}/reject", response_class=HTMLResponse)
async def reject_text(
    review_id: str,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Refuse the text with a reason the partner reads; the directory keeps the last approved one."""
    field = f"reason-text-{review_id}"

    async def work(number: int) -> str:
        text = _reason_or_refuse(reason)
        await directory.reject_review(session, context(request, actor_of(posted).caller, clock), number, reason=text)
        return f"Directory review {number} is rejected; the partner reads why."

    return await _review_action(session, posted, review_id, "directory review", work, field=field, kept={field: reason})


# --- statements --------------------------------------------------------------------------------------------


async def _statements_page(
    session: AsyncSession,
    viewer: people.Current,
    *,
    quarter: str = "",
    status: str = "",
    page: int = 1,
    status_code: int = 200,
    **values: Any,
) -> Response:
    zone = _zone(viewer)
    quarters = await console_repo.statement_quarters(session)
    errors: dict[str, str] = dict(values.pop("errors", {}))
    if quarter and quarter not in quarters:
        errors["quarter"] = f"No statement is of quarter {quarter!r}."
    if status and status not in STATEMENT_STATES:
        errors["status"] = f"{status!r} is not a statement status."
    page = max(page, 1)
    rows = (
        []
        if errors.keys() & {"quarter", "status"}
        else await console_repo.statements(
            session, quarter=quarter or None, status=status or None, offset=(page - 1) * PAGE, limit=PAGE + 1
        )
    )
    filters = {"quarter": quarter, "status": status}
    return _page(
        "console_statements.html",
        viewer,
        "console-statements",
        422 if status_code == 200 and errors.keys() & {"quarter", "status"} else status_code,
        quarters=quarters,
        states=STATEMENT_STATES,
        filters=filters,
        back=_query(**filters, page=page if page > 1 else None),
        may_write=_may(viewer, Permission.STATEMENTS_WRITE),
        rows=[
            {
                "id": s.id,
                "partner_id": s.partner_id,
                "company": company,
                "quarter": s.quarter,
                "status": s.status,
                "payable": _minor(s.payable_amount, s.currency),
                "payout_date": _day(s.payout_date, zone),
                "approved": _when(s.approved_at, zone),
                "paid": _when(s.paid_at, zone),
                "reference": s.payment_reference or "",
            }
            for s, company in rows[:PAGE]
        ],
        older="/console/statements" + _query(**filters, page=page + 1) if len(rows) > PAGE else None,
        errors=errors,
        **{"values": {}, **values},
    )


@router.get("/console/statements", response_class=HTMLResponse)
async def console_statements(
    session: SessionDep, viewer: Viewer, quarter: str = "", status: str = "", page: int = 1
) -> Response:
    """Statements by quarter and status, each with what may be done next (approve, mark paid)."""
    if (away := _partner_user(viewer)) is not None:
        return away
    return await _statements_page(session, viewer, quarter=quarter.strip(), status=status.strip(), page=page)


@router.get("/console/statements/{statement_id}.csv")
async def console_statement_csv(statement_id: str, session: SessionDep, viewer: Viewer) -> Response:
    """One statement as CSV: the API's own download."""
    if (away := _partner_user(viewer)) is not None:
        return away
    sid = _uuid(statement_id)
    if sid is None:
        return _missing(viewer, "console-statements", f"No statement {statement_id}.")
    try:
        statement = await statements_domain.get(session, sid)
        return await statement_csv(session, statement.partner_id, sid)
    except NotFound as missing:
        return _missing(viewer, "console-statements", missing.detail)


async def _statement_action(
    session: AsyncSession,
    posted: people.Current,
    statement_id: str,
    work: Callable[[uuid.UUID], Awaitable[str]],
    filters: dict[str, Any],
    *,
    kept: dict[str, str] | None = None,
    field_prefix: str = "",
) -> Response:
    if (away := _partner_user(posted)) is not None:
        return away
    sid = _uuid(statement_id)
    if sid is None:
        return _missing(posted, "console-statements", f"No statement {statement_id}.")
    try:
        people.require(actor_of(posted), Permission.STATEMENTS_WRITE)
        notice = await attempt(session, lambda: work(sid))
    except DomainError as refusal:
        if isinstance(refusal, NotFound):
            return _missing(posted, "console-statements", refusal.detail)
        named = refusal.extra.get("field")
        return await _statements_page(
            session,
            posted,
            **filters,
            status_code=status_of(refusal),
            problem=refusal.detail,
            errors={f"{field_prefix}{named}": refusal.detail} if named and field_prefix else {},
            values=kept or {},
        )
    return await _statements_page(session, posted, **filters, notice=notice)


@router.post("/console/statements/{statement_id}/approve", response_class=HTMLResponse)
async def approve_statement(
    statement_id: str,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    quarter: str = "",
    status: str = "",
    page: int = 1,
) -> Response:
    """Draft to approved, as the API's approval."""

    async def work(sid: uuid.UUID) -> str:
        row = await statements_domain.approve(session, context(request, actor_of(posted).caller, clock), sid)
        return f"The {row.quarter} statement is approved."

    filters = {"quarter": quarter, "status": status, "page": page}
    return await _statement_action(session, posted, statement_id, work, filters)


@router.post("/console/statements/{statement_id}/mark-paid", response_class=HTMLResponse)
async def mark_statement_paid(
    statement_id: str,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    payment_reference: Annotated[str, Form()] = "",
    paid_on: Annotated[str, Form()] = "",
    quarter: str = "",
    status: str = "",
    page: int = 1,
) -> Response:
    """Approved to paid, with the bank transfer's reference (and the day it was paid, today if none)."""
    prefix = f"{statement_id}-"

    async def work(sid: uuid.UUID) -> str:
        body, errors = validated(Payment, {"payment_reference": payment_reference, "paid_on": paid_on or None})
        if body is None:
            field, detail = next(iter(errors.items()))
            raise Invalid(detail, code="validation_failed", field=field)
        row = await statements_domain.mark_paid(
            session,
            context(request, actor_of(posted).caller, clock),
            sid,
            reference=body.payment_reference,
            paid_on=body.paid_on,
        )
        return f"The {row.quarter} statement is paid under reference {row.payment_reference}."

    filters = {"quarter": quarter, "status": status, "page": page}
    kept = {f"{prefix}payment_reference": payment_reference, f"{prefix}paid_on": paid_on}
    return await _statement_action(session, posted, statement_id, work, filters, kept=kept, field_prefix=prefix)


# --- payout runs -------------------------------------------------------------------------------------------


async def _runs_page(
    session: AsyncSession, viewer: people.Current, *, cursor: str = "", status_code: int = 200, **values: Any
) -> Response:
    zone = _zone(viewer)
    problem = values.pop("problem", None)
    try:
        before = convert.decode_time_id_cursor(cursor or None)
    except Invalid as refusal:
        before, problem, status_code = None, refusal.detail, 422
    rows = await payouts.runs(session, PAGE + 1, before)
    page = rows[:PAGE]
    progress = await payouts.documents_progress(session, [r.id for r in page])
    last = page[-1] if page else None
    return _page(
        "console_runs.html",
        viewer,
        "runs",
        status_code,
        may_write=_may(viewer, Permission.PAYOUT_RUNS_WRITE),
        runs=[
            {
                "id": r.id,
                "reference": r.reference,
                "payment_date": r.payment_date.isoformat(),
                "status": r.status,
                "transfers": r.transfers,
                "total": _minor(r.control_sum, r.currency),
                "created": _when(r.created_at, zone),
                "executed": _when(r.executed_at, zone),
                "documents": dict(zip(("issued", "rendered", "failed"), progress.get(r.id, (0, 0, 0)), strict=True)),
                "has_file": bool(r.sepa_xml),
            }
            for r in page
        ],
        older="/console/payout-runs" + _query(cursor=convert.encode_cursor(last.created_at, last.id))
        if last and len(rows) > PAGE
        else None,
        problem=problem,
        **{"values": {}, "errors": {}, **values},
    )


@router.get("/console/payout-runs", response_class=HTMLResponse)
async def console_runs(session: SessionDep, viewer: Viewer, cursor: str = "") -> Response:
    """Payout runs, newest first, with their invoices' progress and their SEPA files."""
    if (away := _partner_user(viewer)) is not None:
        return away
    return await _runs_page(session, viewer, cursor=cursor)


@router.get("/console/payout-runs/{run_id}", response_class=HTMLResponse)
async def console_run(run_id: str, session: SessionDep, viewer: Viewer) -> Response:
    """One run before the bank gets its file and after: each transfer (partner, amount, account, status,
    a return's reason), each statement it paid with its invoice, and each it could not pay, with why."""
    if (away := _partner_user(viewer)) is not None:
        return away
    rid = _uuid(run_id)
    if rid is None:
        return _missing(viewer, "runs", f"No payout run {run_id}.")
    try:
        return await _run_page(session, viewer, rid)
    except NotFound as missing:
        return _missing(viewer, "runs", missing.detail)


@router.post("/console/payout-runs/{run_id}/transfers/{transfer_id}/return", response_class=HTMLResponse)
async def return_transfer(
    run_id: str,
    transfer_id: str,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """The bank returned a transfer (before the run is confirmed): its statements go back to approved
    with the reason, and the next run pays them (as the API's)."""
    rid, tid = _uuid(run_id), _row_id(transfer_id)
    if rid is None or tid is None:
        return _missing(posted, "runs", f"No transfer {transfer_id} in payout run {run_id}.")
    field = f"reason-{tid}"  # the field of the refusal `work` raises, as `_run_action` shows it

    async def work() -> str:
        assert rid is not None and tid is not None
        body, errors = validated(TransferReturn, {"reason": reason})
        if body is None:
            raise Invalid(errors["reason"], code="validation_failed", field=field)
        ctx = context(request, actor_of(posted).caller, clock)
        view = await payouts.return_transfer(session, ctx, rid, tid, reason=body.reason)
        transfer = next(t for t in view.transfers if t.id == tid)
        return f"Transfer {transfer.end_to_end_id} is returned: its statements go to the next run."

    return await _run_action(
        session, posted, work, {field: reason}, page=lambda **shown: _run_page(session, posted, rid, **shown)
    )


async def _run_page(
    session: AsyncSession, viewer: people.Current, run_id: uuid.UUID, *, status_code: int = 200, **values: Any
) -> Response:
    view = await payouts.view(session, run_id)
    zone = _zone(viewer)
    run = view.run
    companies = await partners_repo.companies(
        session, [t.partner_id for t in view.transfers] + [i.partner_id for i in view.statements]
    )
    by_transfer = {t.id: t for t in view.transfers}

    def partner(partner_id: uuid.UUID) -> dict[str, str]:
        return _link(companies.get(partner_id, str(partner_id)), f"/console/partners/{partner_id}")

    def paid(item: PayoutRunStatement) -> dict[str, Any]:
        invoice = view.invoices.get(item.invoice_id) if item.invoice_id is not None else None
        transfer = by_transfer.get(item.transfer_id)
        return {
            "statement_id": item.statement_id,
            "partner": partner(item.partner_id),
            "amount": _minor(item.payable_amount, item.currency),
            "invoice": invoice.number if invoice is not None else "",
            "invoice_total": _minor(invoice.total, item.currency) if invoice is not None else "",
            "end_to_end_id": transfer.end_to_end_id if transfer is not None else "",
        }

    issued, rendered, failed = view.documents
    return _page(
        "console_run.html",
        viewer,
        "runs",
        status_code,
        run={
            "id": run.id,
            "reference": run.reference,
            "payment_date": run.payment_date.isoformat(),
            "status": run.status,
            "transfers": run.transfers,
            "total": _minor(run.control_sum, run.currency),
            "created": _when(run.created_at, zone),
            "executed": _when(run.executed_at, zone),
            "documents": {"issued": issued, "rendered": rendered, "failed": failed},
            "has_file": bool(run.sepa_xml),
        },
        may_write=_may(viewer, Permission.PAYOUT_RUNS_WRITE),
        transfers=[
            {
                "id": t.id,
                "partner": partner(t.partner_id),
                "name": t.name,
                "amount": _minor(t.amount, run.currency),
                "account": t.iban_masked,
                "end_to_end_id": t.end_to_end_id,
                "remittance": t.remittance,
                "status": t.status,
                "returned": _when(t.returned_at, zone),
                "return_reason": t.return_reason or "",
            }
            for t in view.transfers
        ],
        paid=[paid(i) for i in view.statements if i.transfer_id is not None],
        unpaid=[
            {
                "statement_id": i.statement_id,
                "partner": partner(i.partner_id),
                "amount": _minor(i.payable_amount, i.currency),
                "reasons": [str(r.get("detail", "")) for r in i.reasons],
            }
            for i in view.statements
            if i.transfer_id is None
        ],
        **{"values": {}, "errors": {}, **values},
    )


@router.get("/console/payout-runs/{run_id}/sepa.xml")
async def console_run_sepa(run_id: str, session: SessionDep, viewer: Viewer) -> Response:
    """The run's pain.001.001.09 file: the API's own download."""
    if (away := _partner_user(viewer)) is not None:
        return away
    rid = _uuid(run_id)
    if rid is None:
        return _missing(viewer, "runs", f"No payout run {run_id}.")
    try:
        return await get_payout_run_sepa(rid, session, actor_of(viewer).caller)
    except NotFound as missing:
        return _missing(viewer, "runs", missing.detail)


async def _run_action(
    session: AsyncSession,
    posted: people.Current,
    work: Callable[[], Awaitable[str]],
    kept: dict[str, str],
    page: Callable[..., Awaitable[Response]] | None = None,
) -> Response:
    """Run one payout-run use case (PAYOUT_RUNS_WRITE) in a savepoint and answer with `page` (the
    list of runs unless given): the notice it returns, or its refusal next to its field."""
    if (away := _partner_user(posted)) is not None:
        return away
    shown = page or (lambda **values: _runs_page(session, posted, **values))
    try:
        people.require(actor_of(posted), Permission.PAYOUT_RUNS_WRITE)
        notice = await attempt(session, work)
    except DomainError as refusal:
        if isinstance(refusal, NotFound):
            return _missing(posted, "runs", refusal.detail)
        field = refusal.extra.get("field")
        return await shown(
            status_code=status_of(refusal),
            problem=refusal.detail,
            errors={str(field): refusal.detail} if field else {},
            values=kept,
        )
    return await shown(notice=notice)


@router.post("/console/payout-runs", response_class=HTMLResponse)
async def create_run(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    posted: PostedBy,
    payment_date: Annotated[str, Form()] = "",
) -> Response:
    """A run for the payment date from the approved statements due by then (as the API's)."""

    async def work() -> str:
        body, errors = validated(PayoutRunRequest, {"payment_date": payment_date})
        if body is None:
            raise Invalid(errors["payment_date"], code="validation_failed", field="payment_date")
        ctx = context(request, actor_of(posted).caller, clock)
        view = await payouts.create_run(session, ctx, settings, body.payment_date)
        return f"Run {view.run.reference} pays {view.run.transfers} transfers on {view.run.payment_date.isoformat()}."

    return await _run_action(session, posted, work, {"payment_date": payment_date})


@router.post("/console/payout-runs/{run_id}/confirm", response_class=HTMLResponse)
async def confirm_run(
    run_id: str, request: Request, session: SessionDep, clock: ClockDep, posted: PostedBy
) -> Response:
    """The bank executed the run: the statements it pays become paid under its reference."""
    rid = _uuid(run_id)
    if rid is None:
        return _missing(posted, "runs", f"No payout run {run_id}.")

    async def work() -> str:
        assert rid is not None
        view = await payouts.confirm(session, context(request, actor_of(posted).caller, clock), rid)
        return f"Run {view.run.reference} is confirmed executed."

    return await _run_action(session, posted, work, {})


# --- program terms -----------------------------------------------------------------------------------------


def _flat(value: Any, prefix: str = "") -> dict[str, str]:
    """A terms document as field → value, one line per field (`levels.gold.rate_bp`)."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key in sorted(value):
            out |= _flat(value[key], f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "level" in v for v in value):
            return _flat({str(v["level"]): {k: x for k, x in v.items() if k != "level"} for v in value}, prefix)
        if all(not isinstance(v, dict | list) for v in value):
            return {prefix: ", ".join(str(v) for v in value)}
        return _flat({str(i): v for i, v in enumerate(value)}, prefix)
    return {prefix: value if isinstance(value, str) else json.dumps(value)}


async def _terms_page(
    session: AsyncSession, now: datetime, viewer: people.Current, *, status_code: int = 200, **values: Any
) -> Response:
    zone = _zone(viewer)
    versions = await terms.versions(session)
    in_force = max((v for v in versions if v.effective_from <= now), key=lambda v: v.version, default=None)
    shown: list[dict[str, Any]] = []
    before: dict[str, str] | None = None
    for v in versions:
        fields = _flat(v.terms.model_dump(mode="json"))
        if before is None:
            changes = [(name, "", value) for name, value in fields.items()]
        else:
            changes = [
                (name, before.get(name, "—"), fields.get(name, "—"))
                for name in sorted(before.keys() | fields.keys())
                if before.get(name) != fields.get(name)
            ]
        shown.append(
            {
                "version": v.version,
                "effective_from": _when(v.effective_from, zone),
                "state": "in force"
                if in_force is not None and v.version == in_force.version
                else ("to come" if v.effective_from > now else "past"),
                "first": before is None,
                "changes": changes,
            }
        )
        before = fields
    document = json.dumps(in_force.terms.model_dump(mode="json"), indent=2) if in_force is not None else ""
    recent = await terms_preview.listing(session, now, limit=PAGE, before=None)
    return _page(
        "console_terms.html",
        viewer,
        "terms",
        status_code,
        versions=list(reversed(shown)),
        may_preview=_may(viewer, Permission.TERMS_WRITE),
        zone=viewer.user.time_zone,
        previews=[
            {
                "id": r.id,
                "status": r.status,
                "effective_from": _when(r.effective_from, zone),
                "created": _when(r.created_at, zone),
                "window": f"{r.window_start} to {r.window_end}",
                "published": r.published_version,
            }
            for r in recent
        ],
        **{"errors": {}, **values, "values": {"terms": document, **values.get("values", {})}},
    )


@router.get("/console/terms", response_class=HTMLResponse)
async def console_terms(session: SessionDep, clock: ClockDep, viewer: Viewer) -> Response:
    """Every terms version, newest first, with the fields each changed from the one before it; the
    recent previews of draft terms, and (for who may publish terms) the form that asks for one."""
    if (away := _partner_user(viewer)) is not None:
        return away
    return await _terms_page(session, clock.now(), viewer)


def _typed_moment(text: str, zone: ZoneInfo) -> str:
    """A date-time typed in a form, as RFC 3339: with the offset typed, else in the user's time zone (a
    browser's date-time input has none). What is no date-time is passed on as typed, for the model to
    say why."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return text
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)).isoformat()


def _draft_errors(parsed: Any, said: str) -> str:
    """The model's sentence of the draft, with where in the document it is (`levels.1.min_points`)."""
    try:
        Terms.model_validate(parsed)
    except ValidationError as refused:
        where = ".".join(str(p) for p in refused.errors()[0].get("loc", ()))
        return f"{where}: {said}" if where else said
    return said


@router.post("/console/terms/previews", response_class=HTMLResponse)
async def preview_terms(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    terms_json: Annotated[str, Form(alias="terms", max_length=200_000)] = "",
    effective_from: Annotated[str, Form(max_length=64)] = "",
    first_quarter: Annotated[str, Form(max_length=16)] = "",
    last_quarter: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Draft terms previewed over the program's history (as the API's preview): the worker computes
    it; the page of the preview shows its progress, then who moves and what it costs."""
    if (away := _partner_user(posted)) is not None:
        return away
    kept = {
        "terms": terms_json,
        "effective_from": effective_from,
        "first_quarter": first_quarter,
        "last_quarter": last_quarter,
    }
    actor = actor_of(posted)
    try:
        people.require(actor, Permission.TERMS_WRITE)
        data: dict[str, Any] = {
            "effective_from": _typed_moment(effective_from, _zone(posted)),
            "first_quarter": first_quarter.strip() or None,
            "last_quarter": last_quarter.strip() or None,
        }
        not_json: str | None = None
        try:
            data["terms"] = json.loads(terms_json)
        except ValueError as exc:
            detail = getattr(exc, "msg", str(exc))
            where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            not_json = f"The draft is not JSON: {detail}{where}."
        body, errors = validated(TermsPreviewRequest, data)
        if not_json is not None:
            errors = {"terms": not_json, **{k: v for k, v in errors.items() if k != "terms"}}
        elif "terms" in errors:
            errors["terms"] = _draft_errors(data["terms"], errors["terms"])
        if body is None or errors:
            return await _terms_page(
                session, clock.now(), posted, status_code=422, problem=INVALID_FORM, errors=errors, values=kept
            )
        draft = body

        async def work() -> TermsPreviewRow:
            return await terms_preview.request(
                session,
                context(request, actor.caller, clock),
                draft=draft.terms,
                effective_from=draft.effective_from,
                first_quarter=Quarter.parse(draft.first_quarter) if draft.first_quarter else None,
                last_quarter=Quarter.parse(draft.last_quarter) if draft.last_quarter else None,
            )

        row = await attempt(session, work)
    except DomainError as refusal:
        named = refusal.extra.get("field")
        return await _terms_page(
            session,
            clock.now(),
            posted,
            status_code=status_of(refusal),
            problem=refusal.detail,
            errors={str(named): refusal.detail} if named else {},
            values=kept,
        )
    return see(f"/console/terms/previews/{row.id}")


async def _preview_row(session: AsyncSession, now: datetime, viewer: people.Current, preview_id: str) -> Any:
    """The preview the path names, or the page that says why not (403 without READ_ALL, 404)."""
    try:
        people.require(actor_of(viewer), Permission.READ_ALL)
    except DomainError as refusal:
        return _page(
            "refused.html", viewer, "terms", status_of(refusal), title="Refused", problem=refusal.detail, fields=[]
        )
    pid = _uuid(preview_id)
    if pid is None:
        return _missing(viewer, "terms", f"No terms preview {preview_id}.")
    try:
        return await terms_preview.get(session, pid, now)
    except NotFound as missing:
        return _missing(viewer, "terms", missing.detail)


def _signed(amount: int, currency: str = "") -> str:
    return ("+" if amount > 0 else "") + _minor(amount, currency)


def _bp(basis_points: int) -> str:
    return f"{basis_points / 100:g} %"


def _money_cells(figures: dict[str, Any]) -> list[str]:
    currency = str(figures["currency"])
    return [
        _minor(int(figures["actual"]), currency),
        _minor(int(figures["draft"]), currency),
        _signed(int(figures["difference"]), currency),
    ]


KINDS = {Rule.REFERRAL_COMMISSION.value: "referral (R11)", Rule.LIFETIME_COMMISSION.value: "lifetime (R13)"}
CHART_WIDTH = 170
"""The widest bar of a preview's chart, in the SVG's units."""


def _quarter_chart(by_quarter: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Actual and draft commission per quarter and currency (the kinds summed), as pairs of bars."""
    sums: dict[tuple[str, str], list[int]] = {}
    for item in by_quarter:
        pair = sums.setdefault((str(item["quarter"]), str(item["currency"])), [0, 0])
        pair[0] += int(item["actual"])
        pair[1] += int(item["draft"])
    most = max((max(abs(a), abs(d)) for a, d in sums.values()), default=0) or 1
    return [
        {
            "label": f"{quarter} {currency}",
            "actual": round(CHART_WIDTH * abs(actual) / most),
            "draft": round(CHART_WIDTH * abs(draft) / most),
            "actual_shown": _minor(actual),
            "draft_shown": _minor(draft),
            "cells": [quarter, _minor(actual, currency), _minor(draft, currency), _signed(draft - actual, currency)],
        }
        for (quarter, currency), (actual, draft) in sorted(sums.items())
    ]


@router.get("/console/terms/previews/{preview_id}", response_class=HTMLResponse)
async def console_terms_preview(preview_id: str, session: SessionDep, clock: ClockDep, viewer: Viewer) -> Response:
    """A preview of draft terms: its progress while the worker computes it; once done, which fields it
    models, who moves, what the commission would have been, per quarter and level, and the partners it
    affects most (all of them as CSV)."""
    if (away := _partner_user(viewer)) is not None:
        return away
    row = await _preview_row(session, clock.now(), viewer, preview_id)
    if isinstance(row, Response):
        return row
    zone = _zone(viewer)
    base = await terms_preview.base_terms(session, row)
    modelled, not_modelled = preview_rules.changed_fields(base, Terms.model_validate(row.draft))
    result: dict[str, Any] | None = row.result if row.status == "done" else None
    done: dict[str, Any] = {}
    if result is not None:
        affected = await terms_preview.partners(session, row, after_rank=0, limit=PAGE)
        done = {
            "figures": [
                ("Partners compared", f"{result['partners']:,}"),
                ("Promotions", f"{result['promotions']:,}"),
                ("Demotions", f"{result['demotions']:,}"),
                ("Discounts lowered", f"{result['discounts_lowered']:,}"),
                ("Discounts raised", f"{result['discounts_raised']:,}"),
                ("Orders replayed", f"{result['orders_replayed']:,}"),
            ],
            "refused": [(reason.replace("_", " "), n) for reason, n in result["orders_refused"].items()],
            "totals": [[f["currency"], *_money_cells(f)] for f in result["commission"]],
            "chart": _quarter_chart(result["by_quarter"]),
            "by_quarter": [
                [q["quarter"], KINDS.get(q["kind"], q["kind"]), q["currency"], *_money_cells(q)]
                for q in result["by_quarter"]
            ],
            "by_level": [
                [
                    str(item["level"]).title(),
                    f"{item['partners_now']:,}",
                    f"{item['partners_draft']:,}",
                    *("; ".join(cells[i] for cells in map(_money_cells, item["commission"])) or "—" for i in range(3)),
                ]
                for item in result["by_level"]
            ],
            "partners": [
                {
                    "rank": p.impact_rank,
                    "partner_id": p.partner_id,
                    "company": p.company,
                    "level": p.level_now.title()
                    if p.level_now == p.level_draft
                    else f"{p.level_now.title()} → {p.level_draft.title()}",
                    "discount": _bp(p.discount_bp_now)
                    if p.discount_bp_now == p.discount_bp_draft
                    else f"{_bp(p.discount_bp_now)} → {_bp(p.discount_bp_draft)}",
                    "points": f"{p.points_now:,} / {p.points_now - p.points_lapsing:,}",
                    "commission": [
                        _money_cells({"currency": c, **f, "difference": f["draft"] - f["actual"]})
                        for c, f in sorted(p.commission.items())
                    ],
                }
                for p in affected
            ],
        }
    return _page(
        "console_preview.html",
        viewer,
        "terms",
        preview={
            "id": row.id,
            "status": row.status,
            "created": _when(row.created_at, zone),
            "started": _when(row.started_at, zone),
            "finished": _when(row.finished_at, zone),
            "expires": _when(row.expires_at, zone) if row.published_version is None else "",
            "effective_from": _when(row.effective_from, zone),
            "base_version": row.base_version,
            "window": f"{row.window_start} to {row.window_end}",
            "published": row.published_version,
            "orders_total": row.orders_total,
            "orders_done": row.orders_done,
            "error": row.error,
        },
        modelled=[(name, preview_rules.MODELLED[name]) for name in modelled],
        not_modelled=not_modelled,
        done=done,
        shown=PAGE,
    )


@router.get("/console/terms/previews/{preview_id}/partners.csv")
async def console_terms_preview_csv(preview_id: str, session: SessionDep, clock: ClockDep, viewer: Viewer) -> Response:
    """Every partner of a preview, most affected first: the API's own download."""
    if (away := _partner_user(viewer)) is not None:
        return away
    row = await _preview_row(session, clock.now(), viewer, preview_id)
    if isinstance(row, Response):
        return row
    return await preview_partners_csv(session, row)
