"""The partner portal (`/portal`), for a partner's users by role: only their own partner's data.

Each page calls the use cases the API calls, checks the role table (`may`) the API checks, and says
on the page why a role is refused (403). A vendor's user is sent to the console. Every form is posted
with the session's CSRF token (`PostedBy`); a use case runs in a savepoint, so a refusal leaves nothing
behind but what the rule keeps on purpose (a refused registration is recorded, R06), and the page is
shown again with the refusal in the program's words, next to its field when it names one, and what
was typed kept. Times are in the user's time zone."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import partners as partners_repo
from app.db.tables import Partner
from app.domain import api_keys, directory, leads, partners, people, portal_reads, registrations
from app.domain import payouts as payouts_domain
from app.domain import statements as statements_domain
from app.domain import status as status_domain
from app.domain import terms as terms_domain
from app.domain.errors import DomainError
from app.domain.registrations import EXPIRING_NOTICE, days_left, effective_state
from app.domain.rules import roles
from app.domain.rules.names import LedgerKind, Rule
from app.domain.rules.quarters import Quarter
from app.domain.rules.roles import Kind, Permission, Role, may
from app.routers import convert
from app.routers.deps import ClockDep, SessionDep, SettingsDep, context
from app.routers.pages.common import (
    ModelT,
    PostedBy,
    Viewer,
    actor_of,
    attempt,
    errors_of,
    home_of,
    money,
    render,
    see,
    status_of,
    validated,
)
from app.routers.partner_program import prospect_of
from app.routers.payouts import invoice_pdf
from app.routers.schemas.customers import RegistrationRequest
from app.routers.schemas.directory import DirectoryProfileUpdate
from app.routers.schemas.keys import PartnerKeyRequest
from app.routers.schemas.leads import OfferDecline
from app.routers.schemas.people import PartnerInvite
from app.routers.statements import statement_csv

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

PAGE = 20
"""Rows per page of the portal's lists."""
LEDGER_PAGE = 50
ROW_ID = 2**63 - 1
"""The largest id a row can have (a bigger one in a URL is answered 422, never sent to the database)."""
TextForm = Annotated[str, Form()]
"""A form field is read as text and checked by the API's own schema, so a bad value is said next to its
field on the page (a constraint here would answer the whole form with a bare 422)."""
REGISTRATION_STATES = ("live", "offered", "converted", "expired", "withdrawn")


# --- what every portal page shares ------------------------------------------------------------------------


@dataclass(frozen=True)
class Portal:
    """A signed-in partner user's page: who, which partner, and its time zone."""

    viewer: people.Current
    partner: Partner
    area: str

    @property
    def user(self) -> Any:
        return self.viewer.user

    @property
    def partner_id(self) -> uuid.UUID:
        return self.partner.id

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.user.time_zone)

    def may(self, permission: Permission) -> bool:
        return may(Role(self.user.role), permission)

    def values(self) -> dict[str, Any]:
        return {"user": self.user, "csrf": self.viewer.row.csrf_token, "area": self.area, "partner": self.partner}

    def when(self, moment: datetime | None) -> str:
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M") if moment is not None else ""

    def day(self, moment: datetime | None) -> str:
        return moment.astimezone(self.zone).date().isoformat() if moment is not None else ""


async def _portal(session: AsyncSession, viewer: people.Current, area: str) -> Portal | Response:
    """The page's frame, or the way home for a user who is not a partner's (the console)."""
    user = viewer.user
    if user.kind != Kind.PARTNER.value or user.partner_id is None:
        return see(home_of(viewer))
    partner = await partners_repo.get(session, user.partner_id)
    if partner is None:  # the session's partner is gone: nothing of it to show
        return see(home_of(viewer))
    return Portal(viewer, partner, area)


def _amount(minor: int, currency: str) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d} {currency}"


def _field_errors(refusal: DomainError, fields: tuple[str, ...]) -> dict[str, str]:
    """The refusal said next to the field it names (`field`), or next to the first of the fields it says
    are missing (`missing`: a registration without a strong identifier)."""
    named = errors_of(refusal)
    if named:
        return named
    missing = [f for f in refusal.extra.get("missing", []) if f in fields]
    return {missing[0]: refusal.detail} if missing else {}


def _checked(schema: type[ModelT], data: dict[str, Any]) -> tuple[ModelT | None, dict[str, str], str | None]:
    """The form's values read by the API's own request model (`validated`), with the API's summary of
    what it refused."""
    body, errors = validated(schema, data)
    return (
        body,
        errors,
        None if body is not None else f"The request has invalid or missing values: {', '.join(sorted(errors))}.",
    )


def _pages(page: int, total: int, size: int = PAGE) -> dict[str, Any]:
    last = max(1, math.ceil(total / size))
    return {
        "page": page,
        "last": last,
        "previous": page - 1 if page > 1 else None,
        "next": page + 1 if page < last else None,
    }


def _after(cursor: str | None, decode: Callable[[str | None], T]) -> T | None:
    """A page's cursor, as the API encodes it; one this service did not issue starts from the first page."""
    try:
        return decode(cursor)
    except DomainError:
        return None


Cursor = Annotated[str | None, Query(max_length=400)]
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


# --- home ---------------------------------------------------------------------------------------------------


def _months(now: datetime, zone: ZoneInfo, count: int = 12) -> list[tuple[int, int]]:
    local = now.astimezone(zone)
    year, month = local.year, local.month
    found = []
    for _ in range(count):
        found.append((year, month))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(found))


MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CHART_HEIGHT = 120
CHART_TOP = 16
BAR_STEP = 26


def _bars(values: list[int]) -> dict[str, Any]:
    """A bar per value, drawn in SVG units: from a zero line that also serves negative values."""
    high, low = max([*values, 0]), min([*values, 0])
    span = (high - low) or 1
    zero = CHART_TOP + CHART_HEIGHT * (high / span if high or low else 1)  # nothing yet: a line at the bottom
    bars = []
    for n, value in enumerate(values):
        size = CHART_HEIGHT * abs(value) / span
        bars.append(
            {"x": 40 + n * BAR_STEP, "y": round(zero - size if value > 0 else zero, 1), "height": round(size, 1)}
        )
    return {"bars": bars, "zero": round(zero, 1), "width": 40 + len(values) * BAR_STEP + 8}


async def _history(session: AsyncSession, portal: Portal, now: datetime) -> dict[str, Any]:
    """Active points at the end of each of the last 12 months, and the commission each earned, in the
    user's time zone."""
    zone = portal.zone
    months = _months(now, zone)
    since = datetime(months[0][0], months[0][1], 1, tzinfo=zone).astimezone(UTC)
    before, points, money_rows = await portal_reads.history_since(session, portal.partner_id, since)
    gained: dict[tuple[int, int], int] = {}
    for entry in points:
        local = entry.effective_at.astimezone(zone)
        gained[(local.year, local.month)] = gained.get((local.year, local.month), 0) + entry.amount
    earned: dict[tuple[int, int, str], int] = {}
    totals: dict[str, int] = {}
    for entry in money_rows:
        local = entry.effective_at.astimezone(zone)
        key = (local.year, local.month, entry.currency or "")
        earned[key] = earned.get(key, 0) + entry.amount
        totals[entry.currency or ""] = totals.get(entry.currency or "", 0) + abs(entry.amount)
    currencies = sorted(totals, key=lambda c: (-totals[c], c)) or ["EUR"]
    running, standing = before, []
    for month in months:
        running += gained.get(month, 0)
        standing.append(running)
    main = currencies[0]
    commission = [earned.get((y, m, main), 0) for y, m in months]
    rows = [
        {
            "month": f"{y}-{m:02d}",
            "points": f"{standing[n]:,}",
            "commission": [_amount(earned.get((y, m, c), 0), c) for c in currencies],
        }
        for n, (y, m) in enumerate(months)
    ]
    labels = [{"x": 40 + n * BAR_STEP + 11, "text": MONTH_NAMES[m - 1]} for n, (_, m) in enumerate(months)]
    return {
        "rows": rows,
        "currencies": currencies,
        "main": main,
        "labels": labels,
        "points_chart": _bars(standing) | {"top": f"{max([*standing, 0]):,}"},
        "money_chart": _bars(commission) | {"top": _amount(max([*commission, 0]), main)},
        "first": rows[0]["month"],
        "last": rows[-1]["month"],
    }


@router.get("/portal", response_class=HTMLResponse)
async def portal(session: SessionDep, clock: ClockDep, viewer: Viewer) -> Response:
    """Level and points, what the next level needs, the points at risk and the licences behind them,
    commission this quarter by kind, what needs doing, and a year of points and commission."""
    frame = await _portal(session, viewer, "portal")
    if not isinstance(frame, Portal):
        return frame
    now = clock.now()
    pid = frame.partner_id
    standing = await status_domain.status(session, pid, now)
    balances = [_amount(a, c) for c, a in sorted(standing.commission_balances.items())]
    at_risk = [
        {
            "company": licence.company,
            "what": f"{licence.quantity} × {licence.sku}",
            "lapses": frame.day(licence.term_end),
            "points": f"{licence.points:,}",
        }
        for licence in await portal_reads.licences_at_risk(session, pid, now, standing.at_risk_until)
    ]
    values: dict[str, Any] = {
        "status": standing,
        "balances": balances,
        "at_risk": at_risk,
        "at_risk_until": frame.day(standing.at_risk_until),
        "reads_ledger": frame.may(Permission.LEDGER_READ),
        "leads_waiting": [],
        "expiring": [],
        "quarter": None,
        "by_kind": [],
        "history": None,
        "reads_leads": frame.may(Permission.LEADS_READ),
        "reads_registrations": frame.may(Permission.REGISTRATIONS_READ),
    }
    if frame.may(Permission.LEDGER_READ):
        program_zone = (await terms_domain.in_force(session, now)).terms.zone
        quarter = Quarter.of(now, program_zone)
        values["quarter"] = str(quarter)
        values["by_kind"] = [
            {"kind": _rule_label(rule), "amount": _amount(amount, currency)}
            for rule, currency, amount in await portal_reads.commission_by_rule(
                session, pid, quarter.start(program_zone), quarter.end(program_zone)
            )
        ]
        values["history"] = await _history(session, frame, now)
    if frame.may(Permission.LEADS_READ):
        values["leads_waiting"] = [
            {"company": lead.company, "deadline": frame.when(offer.deadline)}
            for offer, lead in await portal_reads.lead_offers(session, pid, ["offered"])
        ]
    if frame.may(Permission.REGISTRATIONS_READ):
        values["expiring"] = [
            {"company": r.company, "expires": frame.when(r.expires_at), "days_left": days_left(r, now)}
            for r in reversed(await registrations.for_partner(session, pid, states=["live"], now=now))
            if r.expires_at <= now + EXPIRING_NOTICE
        ]
    return render("portal.html", **frame.values(), **values)


def _rule_label(rule: str) -> str:
    """A rule as a person reads it: what it gives, then its id in the program's rules (R21)."""
    known = next((r for r in Rule if r.value == rule), None)
    if known is None:
        return rule
    return f"{known.summary[:1].upper()}{known.summary[1:]} ({known.value})"


# --- customers: registrations -------------------------------------------------------------------------------

REGISTRATION_FIELDS = ("company", "country", "contact_name", "contact_email", "vat_id", "domain", "store_customer_id")


async def _customers_page(
    session: AsyncSession,
    now: datetime,
    frame: Portal,
    *,
    state: str | None = None,
    page: int = 1,
    status_code: int = 200,
    **values: Any,
) -> Response:
    page_values: dict[str, Any] = {
        **frame.values(),
        "state": state or "",
        "states": REGISTRATION_STATES,
        "values": dict.fromkeys(REGISTRATION_FIELDS, ""),
        "may_write": frame.may(Permission.REGISTRATIONS_WRITE),
        "reads": frame.may(Permission.REGISTRATIONS_READ),
        "rows": [],
        "pages": _pages(1, 0),
        **values,
    }
    if not frame.may(Permission.REGISTRATIONS_READ):
        page_values["problem"] = page_values.get("problem") or "Your role does not read the partner's registrations."
        return render("portal_customers.html", 403, **page_values)
    found = await registrations.for_partner(session, frame.partner_id, states=[state] if state else None, now=now)
    pages = _pages(page, len(found))
    page_values["rows"] = [
        {
            "id": r.id,
            "company": r.company,
            "country": r.country,
            "state": effective_state(r, now),
            "registered": frame.day(r.registered_at),
            "expires": frame.when(r.expires_at),
            "days_left": days_left(r, now),
            "open": effective_state(r, now) in ("live", "offered"),
        }
        for r in found[(page - 1) * PAGE : page * PAGE]
    ]
    page_values["pages"] = pages
    page_values["total"] = len(found)
    return render("portal_customers.html", status_code, **page_values)


@router.get("/portal/customers", response_class=HTMLResponse)
async def portal_customers(
    session: SessionDep,
    clock: ClockDep,
    viewer: Viewer,
    state: Annotated[str, Query(max_length=16)] = "",
    page: PageNumber = 1,
) -> Response:
    """The partner's registrations with the days left in each window, a page at a time, by state; and the
    form that registers a prospective customer (R05-R07)."""
    frame = await _portal(session, viewer, "customers")
    if not isinstance(frame, Portal):
        return frame
    known = state if state in REGISTRATION_STATES else None  # "" (any state) from the filter's form
    return await _customers_page(session, clock.now(), frame, state=known, page=page)


@router.post("/portal/customers", response_class=HTMLResponse)
async def register_customer(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    company: TextForm = "",
    country: TextForm = "",
    contact_name: TextForm = "",
    contact_email: TextForm = "",
    vat_id: TextForm = "",
    domain: TextForm = "",
    store_customer_id: TextForm = "",
) -> Response:
    """Register a prospective customer, or say why the program refuses it, as the API says it."""
    frame = await _portal(session, posted, "customers")
    if not isinstance(frame, Portal):
        return frame
    now = clock.now()
    typed = {
        "company": company,
        "country": country,
        "contact_name": contact_name,
        "contact_email": contact_email,
        "vat_id": vat_id,
        "domain": domain,
        "store_customer_id": store_customer_id,
    }
    if not frame.may(Permission.REGISTRATIONS_WRITE):
        return await _customers_page(
            session, now, frame, status_code=403, values=typed, problem="Your role does not register customers."
        )
    data = {k: v.strip() for k, v in typed.items() if v.strip()}
    body, errors, summary = _checked(RegistrationRequest, data)
    if body is None:
        return await _customers_page(session, now, frame, status_code=422, values=typed, errors=errors, problem=summary)
    ctx = context(request, actor_of(posted).caller, clock)
    prospect = prospect_of(body)

    async def work() -> Any:
        await partners.may_write(session, frame.partner_id)
        return await registrations.register(session, ctx, frame.partner_id, prospect)

    try:
        made = await attempt(session, work)
    except DomainError as refusal:
        return await _customers_page(
            session,
            now,
            frame,
            status_code=status_of(refusal),
            values=typed,
            errors=_field_errors(refusal, REGISTRATION_FIELDS),
            problem=refusal.detail,
        )
    notice = f"{made.company} is registered to you until {frame.when(made.expires_at)} ({days_left(made, now)} days)."
    return await _customers_page(session, now, frame, notice=notice)


@router.post("/portal/customers/{registration_id}/withdraw", response_class=HTMLResponse)
async def withdraw_registration(
    registration_id: uuid.UUID, request: Request, session: SessionDep, clock: ClockDep, posted: PostedBy
) -> Response:
    """Give up one of the partner's open registrations: the customer is free for others at once."""
    frame = await _portal(session, posted, "customers")
    if not isinstance(frame, Portal):
        return frame
    now = clock.now()
    if not frame.may(Permission.REGISTRATIONS_WRITE):
        return await _customers_page(
            session, now, frame, status_code=403, problem="Your role does not withdraw registrations."
        )
    ctx = context(request, actor_of(posted).caller, clock)

    async def work() -> Any:
        await partners.may_write(session, frame.partner_id)
        return await registrations.withdraw(session, ctx, frame.partner_id, registration_id)

    try:
        row = await attempt(session, work)
    except DomainError as refusal:
        return await _customers_page(session, now, frame, status_code=status_of(refusal), problem=refusal.detail)
    return await _customers_page(session, now, frame, notice=f"Your registration of {row.company} is withdrawn.")


# --- leads ------------------------------------------------------------------------------------------------------


async def _leads_page(
    session: AsyncSession, frame: Portal, *, page: int = 1, status_code: int = 200, **values: Any
) -> Response:
    page_values: dict[str, Any] = {
        **frame.values(),
        "open": [],
        "past": [],
        "pages": _pages(1, 0),
        "may_write": frame.may(Permission.LEADS_WRITE),
        "reads": frame.may(Permission.LEADS_READ),
        **values,
    }
    if not frame.may(Permission.LEADS_READ):
        page_values["problem"] = (
            page_values.get("problem") or "Your role does not read the leads offered to the partner."
        )
        return render("portal_leads.html", 403, **page_values)
    offers = await portal_reads.lead_offers(session, frame.partner_id)

    def shown(offer: Any, lead: Any) -> dict[str, Any]:
        where = ", ".join(p for p in (lead.city, lead.region, lead.country) if p)
        return {
            "id": offer.id,
            "company": lead.company,
            "where": where,
            "products": ", ".join(lead.products),
            "why": offer.rank_reason,
            "offered": frame.when(offer.offered_at),
            "deadline": frame.when(offer.deadline),
            "state": offer.state,
            "ended": frame.when(offer.ended_at),
            "reason": offer.reason or "",
        }

    past = [shown(o, lead) for o, lead in offers if o.state != "offered"]
    page_values["open"] = [shown(o, lead) for o, lead in offers if o.state == "offered"]
    page_values["past"] = past[(page - 1) * PAGE : page * PAGE]
    page_values["pages"] = _pages(page, len(past))
    return render("portal_leads.html", status_code, **page_values)


@router.get("/portal/leads", response_class=HTMLResponse)
async def portal_leads(session: SessionDep, viewer: Viewer, page: PageNumber = 1) -> Response:
    """The leads offered to the partner, to accept or decline before their deadline (R19), and the past
    ones a page at a time."""
    frame = await _portal(session, viewer, "leads")
    if not isinstance(frame, Portal):
        return frame
    return await _leads_page(session, frame, page=page)


@router.post("/portal/leads/{offer_id}/accept", response_class=HTMLResponse)
async def accept_lead(
    offer_id: uuid.UUID, request: Request, session: SessionDep, clock: ClockDep, posted: PostedBy
) -> Response:
    """Take the lead: its registration becomes the partner's, and its 60-day window starts now."""
    frame = await _portal(session, posted, "leads")
    if not isinstance(frame, Portal):
        return frame
    if not frame.may(Permission.LEADS_WRITE):
        return await _leads_page(session, frame, status_code=403, problem="Your role does not accept leads.")
    ctx = context(request, actor_of(posted).caller, clock)

    async def work() -> Any:
        await partners.may_write(session, frame.partner_id)
        return await leads.accept(session, ctx, frame.partner_id, offer_id)

    try:
        offer = await attempt(session, work)
    except DomainError as refusal:
        return await _leads_page(session, frame, status_code=status_of(refusal), problem=refusal.detail)
    if offer.state != "accepted":  # the deadline had passed: the lead went on to the next partner
        return await _leads_page(
            session, frame, status_code=409, problem="The deadline passed: the lead went to the next partner."
        )
    return await _leads_page(session, frame, notice="The lead is yours: see it among your customers.")


@router.post("/portal/leads/{offer_id}/decline", response_class=HTMLResponse)
async def decline_lead(
    offer_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    reason: TextForm = "",
) -> Response:
    """Decline the lead: it passes to the next partner at once."""
    frame = await _portal(session, posted, "leads")
    if not isinstance(frame, Portal):
        return frame
    if not frame.may(Permission.LEADS_WRITE):
        return await _leads_page(session, frame, status_code=403, problem="Your role does not decline leads.")
    body, _errors, summary = _checked(OfferDecline, {"reason": reason.strip()} if reason.strip() else {})
    if body is None:
        return await _leads_page(session, frame, status_code=422, problem=summary)
    ctx = context(request, actor_of(posted).caller, clock)

    async def work() -> Any:
        await partners.may_write(session, frame.partner_id)
        return await leads.decline(session, ctx, frame.partner_id, offer_id, body.reason)

    try:
        await attempt(session, work)
    except DomainError as refusal:
        return await _leads_page(session, frame, status_code=status_of(refusal), problem=refusal.detail)
    return await _leads_page(session, frame, notice="Declined: the lead passes to the next partner.")


# --- the ledger and statements --------------------------------------------------------------------------------


@router.get("/portal/ledger", response_class=HTMLResponse)
async def portal_ledger(
    session: SessionDep,
    viewer: Viewer,
    kind: Literal["points", "money"] = "points",
    rule: Annotated[str, Query(max_length=8)] = "",
    before: Annotated[int | None, Query(ge=1, le=ROW_ID)] = None,
) -> Response:
    """The partner's ledgers, newest first, a page at a time, each entry with its rule and why (R21);
    filtered by rule."""
    frame = await _portal(session, viewer, "ledger")
    if not isinstance(frame, Portal):
        return frame
    ledger = LedgerKind.POINTS if kind == "points" else LedgerKind.MONEY
    chosen = next((r for r in Rule if r.value == rule and ledger in r.ledgers), None)  # "": every rule
    page: dict[str, Any] = {
        **frame.values(),
        "kind": kind,
        "rule": chosen.value if chosen else "",
        "rules": [{"value": r.value, "label": _rule_label(r.value)} for r in Rule if ledger in r.ledgers],
    }
    if not frame.may(Permission.LEDGER_READ):
        return render("ledger.html", 403, **page, rows=[], older=None, problem="Your role does not read the ledger.")
    read = portal_reads.points_entries if kind == "points" else portal_reads.money_entries
    entries: list[Any] = list(
        await read(
            session, frame.partner_id, rule=chosen.value if chosen else None, before_id=before, limit=LEDGER_PAGE + 1
        )
    )
    rows = [
        {
            "when": frame.when(e.effective_at),
            "rule": e.rule,
            "why": e.explanation,
            "order": e.order_id or "",
            "amount": f"{e.points:+,}" if kind == "points" else money(e),
        }
        for e in entries[:LEDGER_PAGE]
    ]
    older = entries[LEDGER_PAGE - 1].id if len(entries) > LEDGER_PAGE else None
    return render("ledger.html", **page, rows=rows, older=older)


@router.get("/portal/statements", response_class=HTMLResponse)
async def portal_statements(session: SessionDep, viewer: Viewer) -> Response:
    """The partner's statements, newest first, each downloadable as CSV (for the roles that read them)."""
    frame = await _portal(session, viewer, "statements")
    if not isinstance(frame, Portal):
        return frame
    page = frame.values()
    if not frame.may(Permission.STATEMENTS_READ):
        return render("statements.html", 403, **page, rows=[], problem="Your role does not read statements.")
    rows = [
        {
            "id": s.id,
            "quarter": s.quarter,
            "currency": s.currency,
            "status": s.status.replace("_", " "),
            "amount": _amount(s.payable_amount, s.currency),
            "payout_date": s.payout_date.date().isoformat(),
        }
        for s in await statements_domain.search(session, partner_id=frame.partner_id)
    ]
    return render("statements.html", **page, rows=rows)


@router.get("/portal/statements/{statement_id}.csv")
async def portal_statement_csv(statement_id: uuid.UUID, session: SessionDep, viewer: Viewer) -> Response:
    """One of the partner's statements as CSV: the API's own download."""
    user = viewer.user
    if user.partner_id is None or not may(Role(user.role), Permission.STATEMENTS_READ):
        return see("/portal/statements")  # which says why
    return await statement_csv(session, user.partner_id, statement_id)


# --- payouts and invoices ----------------------------------------------------------------------------------------


async def _payouts_page(
    session: AsyncSession,
    frame: Portal,
    *,
    before: str | None = None,
    invoices_before: str | None = None,
    status_code: int = 200,
    **values: Any,
) -> Response:
    page: dict[str, Any] = {
        **frame.values(),
        "reads_payouts": frame.may(Permission.PAYOUTS_READ),
        "reads_invoices": frame.may(Permission.INVOICES_READ),
        "transfers": [],
        "invoices": [],
        "older_transfers": None,
        "older_invoices": None,
        **values,
    }
    if not (page["reads_payouts"] or page["reads_invoices"]):
        page["problem"] = page.get("problem") or "Your role does not read payouts or invoices."
        return render("portal_payouts.html", 403, **page)
    if page["reads_payouts"]:
        found = await payouts_domain.partner_payouts(
            session, frame.partner_id, PAGE + 1, _after(before, convert.decode_int_cursor)
        )
        page["transfers"] = [
            {
                "date": p.run.payment_date.isoformat(),
                "amount": _amount(p.transfer.amount, p.run.currency),
                "account": p.transfer.iban_masked,
                "status": p.transfer.status,
                "returned": p.transfer.return_reason or "",
                "invoices": ", ".join(n for _, n in p.paid if n) or "",
                "remittance": p.transfer.remittance,
            }
            for p in found[:PAGE]
        ]
        if len(found) > PAGE:
            page["older_transfers"] = convert.encode_cursor(found[PAGE - 1].transfer.id)
    if page["reads_invoices"]:
        views = await payouts_domain.invoices(
            session,
            PAGE + 1,
            partner_id=frame.partner_id,
            before=_after(invoices_before, convert.decode_time_int_cursor),
        )
        page["invoices"] = [
            {
                "id": v.invoice.id,
                "number": v.invoice.number,
                "kind": "credit note" if v.invoice.kind == "credit_note" else "invoice",
                "quarter": v.invoice.quarter,
                "issued": frame.day(v.invoice.issued_at),
                "total": _amount(v.invoice.total, v.invoice.currency),
                "rendered": v.document is not None and v.document.rendered_at is not None,
                "note": (
                    f"credits {v.credits_number}"
                    if v.credits_number
                    else f"credited by {v.credited_by}"
                    if v.credited_by
                    else ""
                ),
            }
            for v in views[:PAGE]
        ]
        if len(views) > PAGE:
            last = views[PAGE - 1].invoice
            page["older_invoices"] = convert.encode_cursor(last.issued_at, last.id)
    return render("portal_payouts.html", status_code, **page)


@router.get("/portal/payouts", response_class=HTMLResponse)
async def portal_payouts(
    session: SessionDep, viewer: Viewer, before: Cursor = None, invoices_before: Cursor = None
) -> Response:
    """The partner's payouts (the transfers payout runs made to it) and its self-billed invoices, each
    downloadable as PDF once rendered."""
    frame = await _portal(session, viewer, "payouts")
    if not isinstance(frame, Portal):
        return frame
    return await _payouts_page(session, frame, before=before, invoices_before=invoices_before)


@router.get("/portal/invoices/{invoice_id}.pdf")
async def portal_invoice_pdf(
    invoice_id: Annotated[int, Path(ge=1, le=ROW_ID)], session: SessionDep, viewer: Viewer
) -> Response:
    """One of the partner's invoices as PDF: the API's own download. Another partner's is not found (404);
    one not rendered yet says so (409)."""
    frame = await _portal(session, viewer, "payouts")
    if not isinstance(frame, Portal):
        return frame
    if not frame.may(Permission.INVOICES_READ):
        return await _payouts_page(session, frame, status_code=403, problem="Your role does not read invoices.")
    try:
        return await invoice_pdf(session, frame.partner_id, invoice_id)
    except DomainError as refusal:
        return await _payouts_page(session, frame, status_code=status_of(refusal), problem=refusal.detail)


# --- the directory profile --------------------------------------------------------------------------------------

PROFILE_TEXT = ("description", "region", "website")
PROFILE_LISTS = ("services", "regions_served", "languages")


def _profile_values(partner: Partner) -> dict[str, Any]:
    return {
        "description": partner.description or "",
        "region": partner.region or "",
        "website": partner.website or "",
        "services": "\n".join(partner.services),
        "regions_served": "\n".join(partner.regions_served),
        "languages": ", ".join(partner.languages),
        "listed": partner.listed,
    }


async def _profile_page(session: AsyncSession, frame: Portal, *, status_code: int = 200, **values: Any) -> Response:
    reviews = await directory.reviews(
        session, status=None, kind=None, partner_id=frame.partner_id, before_id=None, limit=10
    )
    kinds = {
        "text": "Description and services",
        "name_and_website": "Company name and website",
        "company_name": "Company name",
    }
    page: dict[str, Any] = {
        **frame.values(),
        "values": _profile_values(frame.partner),
        "may_write": frame.may(Permission.DIRECTORY_WRITE),
        "published": {
            "company": frame.partner.published_company or frame.partner.company,
            "website": (frame.partner.published_website if frame.partner.published_company else frame.partner.website)
            or "",
            "description": frame.partner.published_description or "",
            "services": ", ".join(frame.partner.published_services),
        },
        "hidden": frame.partner.hidden_reason if frame.partner.hidden_at else None,
        "reviews": [
            {
                "kind": kinds.get(r.kind, r.kind),
                "submitted": frame.when(r.submitted_at),
                "status": r.status,
                "decided": frame.when(r.decided_at),
                "reason": r.reason or "",
            }
            for r in reviews
        ],
        **values,
    }
    if not frame.may(Permission.DIRECTORY_READ):
        page["problem"] = page.get("problem") or "Your role does not read the directory profile."
        return render("portal_profile.html", 403, **page)
    return render("portal_profile.html", status_code, **page)


def _lines(text: str, *, commas: bool = False) -> list[str]:
    parts = text.replace(",", "\n").splitlines() if commas else text.splitlines()
    return [p.strip() for p in parts if p.strip()]


@router.get("/portal/profile", response_class=HTMLResponse)
async def portal_profile(session: SessionDep, viewer: Viewer) -> Response:
    """The partner's directory profile, to edit, with where its review stands (R18)."""
    frame = await _portal(session, viewer, "profile")
    if not isinstance(frame, Portal):
        return frame
    return await _profile_page(session, frame)


@router.post("/portal/profile", response_class=HTMLResponse)
async def save_profile(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    description: TextForm = "",
    services: TextForm = "",
    regions_served: TextForm = "",
    region: TextForm = "",
    website: TextForm = "",
    languages: TextForm = "",
    listed: TextForm = "",
) -> Response:
    """Change the fields that differ from the profile as it stands; new public text waits for review."""
    frame = await _portal(session, posted, "profile")
    if not isinstance(frame, Portal):
        return frame
    typed = {
        "description": description,
        "services": services,
        "regions_served": regions_served,
        "region": region,
        "website": website,
        "languages": languages,
        "listed": listed == "on",
    }
    if not frame.may(Permission.DIRECTORY_WRITE):
        return await _profile_page(
            session, frame, status_code=403, values=typed, problem="Your role does not edit the directory profile."
        )
    wanted: dict[str, Any] = {
        "description": description.strip() or None,
        "region": region.strip() or None,
        "website": website.strip() or None,
        "services": _lines(services),
        "regions_served": _lines(regions_served),
        "languages": [code.lower() for code in _lines(languages, commas=True)],
        "listed": listed == "on",
    }
    partner = frame.partner
    current = {name: getattr(partner, name) for name in wanted}
    changes = {
        name: value
        for name, value in wanted.items()
        if value != (list(current[name]) if isinstance(current[name], list) else current[name])
    }
    body, errors, summary = _checked(DirectoryProfileUpdate, changes)
    if body is None:
        return await _profile_page(session, frame, status_code=422, values=typed, errors=errors, problem=summary)
    checked = body.model_dump(exclude_unset=True)
    if checked.get("website") is not None:
        checked["website"] = str(body.website)
    ctx = context(request, actor_of(posted).caller, clock)

    async def work() -> Any:
        await partners.may_write(session, frame.partner_id)
        return await directory.update_profile(session, ctx, frame.partner_id, checked)

    try:
        await attempt(session, work)
    except DomainError as refusal:
        await session.refresh(partner)  # as it stands, not as the refused change left it in memory
        return await _profile_page(
            session,
            frame,
            status_code=status_of(refusal),
            values=typed,
            errors=errors_of(refusal),
            problem=refusal.detail,
        )
    notice = "Saved." if checked else "Nothing changed."
    if {"description", "services", "website"} & set(checked):
        notice += " The directory shows the new text once Qalyptus has reviewed it."
    return await _profile_page(session, frame, notice=notice)


# --- the team ------------------------------------------------------------------------------------------------------


async def _team_page(
    session: AsyncSession, frame: Portal, *, after: str | None = None, status_code: int = 200, **values: Any
) -> Response:
    role = Role(frame.user.role)
    invitable = [r for r in roles.ORDER if roles.KIND_OF[r] is Kind.PARTNER and roles.may_invite(role, r)]
    page: dict[str, Any] = {
        **frame.values(),
        "members": [],
        "next": None,
        "may_write": frame.may(Permission.TEAM_WRITE),
        "roles": [{"value": roles.NAMES[r], "label": roles.NAMES[r].replace("_", " ")} for r in invitable],
        "values": {
            "email": "",
            "name": "",
            "role": roles.NAMES[invitable[0]] if invitable else "",
            "time_zone": frame.user.time_zone,
        },
        **values,
    }
    if not frame.may(Permission.TEAM_READ):
        page["problem"] = page.get("problem") or "Your role does not read the partner's team."
        return render("portal_team.html", 403, **page)
    actor = actor_of(frame.viewer)
    rows = await people.users(
        session, actor, partner_id=frame.partner_id, limit=PAGE + 1, after=_after(after, convert.decode_text_cursor)
    )
    page["members"] = [
        {
            "id": u.id,
            "name": u.name or "",
            "email": u.email,
            "role": roles.NAMES[Role(u.role)].replace("_", " "),
            "status": u.status,
            "me": u.id == frame.user.id,
        }
        for u in rows[:PAGE]
    ]
    if len(rows) > PAGE:
        page["next"] = convert.encode_cursor(rows[PAGE - 1].email)
    return render("portal_team.html", status_code, **page)


@router.get("/portal/team", response_class=HTMLResponse)
async def portal_team(session: SessionDep, viewer: Viewer, after: Cursor = None) -> Response:
    """The partner's users, by address, a page at a time; owners invite and deactivate them."""
    frame = await _portal(session, viewer, "team")
    if not isinstance(frame, Portal):
        return frame
    return await _team_page(session, frame, after=after)


@router.post("/portal/team", response_class=HTMLResponse)
async def invite_member(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    posted: PostedBy,
    email: TextForm = "",
    name: TextForm = "",
    role: TextForm = "",
    time_zone: TextForm = "",
) -> Response:
    """Invite a member of the team, mailed a link to set its password (roles as the role table allows)."""
    frame = await _portal(session, posted, "team")
    if not isinstance(frame, Portal):
        return frame
    typed = {"email": email, "name": name, "role": role, "time_zone": time_zone}
    if not frame.may(Permission.TEAM_WRITE):
        return await _team_page(
            session, frame, status_code=403, values=typed, problem="Your role does not invite users."
        )
    data = {k: v.strip() for k, v in typed.items() if v.strip()}
    body, errors, summary = _checked(PartnerInvite, data)
    if body is None:
        return await _team_page(session, frame, status_code=422, values=typed, errors=errors, problem=summary)
    chosen = roles.role_named(Kind.PARTNER, body.role)
    assert chosen is not None, "the schema names only a partner's roles"
    actor = actor_of(posted)
    ctx = context(request, actor.caller, clock)

    async def work() -> Any:
        await partners.may_write(session, frame.partner_id)
        return await people.invite(
            session, ctx, settings, actor, email=body.email, role=chosen, partner_id=frame.partner_id,
            name=body.name, time_zone=body.time_zone,
        )  # fmt: skip

    try:
        invited = await attempt(session, work)
    except DomainError as refusal:
        return await _team_page(
            session,
            frame,
            status_code=status_of(refusal),
            values=typed,
            errors=errors_of(refusal) or ({"email": refusal.detail} if refusal.code == "user_exists" else {}),
            problem=refusal.detail,
        )
    return await _team_page(session, frame, notice=f"{invited.user.email} is invited: a link to join is on its way.")


@router.post("/portal/team/{user_id}/deactivate", response_class=HTMLResponse)
async def deactivate_member(
    user_id: uuid.UUID, request: Request, session: SessionDep, clock: ClockDep, posted: PostedBy
) -> Response:
    """The member can no longer sign in; its sessions end."""
    frame = await _portal(session, posted, "team")
    if not isinstance(frame, Portal):
        return frame
    if not frame.may(Permission.TEAM_WRITE):
        return await _team_page(session, frame, status_code=403, problem="Your role does not deactivate users.")
    actor = actor_of(posted)
    ctx = context(request, actor.caller, clock)

    async def work() -> Any:
        await partners.may_write(session, frame.partner_id)
        return await people.deactivate(session, ctx, actor, user_id)

    try:
        user = await attempt(session, work)
    except DomainError as refusal:
        return await _team_page(session, frame, status_code=status_of(refusal), problem=refusal.detail)
    return await _team_page(session, frame, notice=f"{user.email} is deactivated: it can no longer sign in.")


# --- API keys ------------------------------------------------------------------------------------------------------


async def _keys_page(session: AsyncSession, frame: Portal, *, status_code: int = 200, **values: Any) -> Response:
    page: dict[str, Any] = {
        **frame.values(),
        "keys": [],
        "values": {"name": ""},
        "issued": None,
        "may_write": frame.may(Permission.API_KEYS_WRITE),
        **values,
    }
    if not frame.may(Permission.API_KEYS_WRITE):
        page["problem"] = page.get("problem") or "Your role does not manage the partner's API keys."
        return render("portal_keys.html", 403, **page)
    rows = await api_keys.listing(session, kinds=["partner"], partner_id=frame.partner_id, include_revoked=True)
    page["keys"] = [
        {
            "id": k.id,
            "name": k.name,
            "prefix": k.prefix,
            "created": frame.when(k.created_at),
            "last_used": frame.when(k.last_used_at) or "never",
            "revoked": frame.when(k.revoked_at),
        }
        for k in sorted(rows, key=lambda k: (k.revoked_at is not None, k.created_at), reverse=False)
    ]
    return render("portal_keys.html", status_code, **page)


@router.get("/portal/keys", response_class=HTMLResponse)
async def portal_keys(session: SessionDep, viewer: Viewer) -> Response:
    """The partner's API keys (never the keys themselves), to create and revoke."""
    frame = await _portal(session, viewer, "keys")
    if not isinstance(frame, Portal):
        return frame
    return await _keys_page(session, frame)


@router.post("/portal/keys", response_class=HTMLResponse)
async def create_key(
    request: Request, session: SessionDep, clock: ClockDep, posted: PostedBy, name: TextForm = ""
) -> Response:
    """A new key for the partner, shown this once."""
    frame = await _portal(session, posted, "keys")
    if not isinstance(frame, Portal):
        return frame
    if not frame.may(Permission.API_KEYS_WRITE):
        return await _keys_page(session, frame, status_code=403)
    body, errors, summary = _checked(PartnerKeyRequest, {"name": name.strip()})
    if body is None:
        return await _keys_page(session, frame, status_code=422, values={"name": name}, errors=errors, problem=summary)
    ctx = context(request, actor_of(posted).caller, clock)
    label = str(body.name)
    try:
        issued = await attempt(session, lambda: partners.issue_key(session, ctx, frame.partner_id, name=label))
    except DomainError as refusal:
        return await _keys_page(
            session, frame, status_code=status_of(refusal), values={"name": name}, problem=refusal.detail
        )
    return await _keys_page(
        session,
        frame,
        issued={"name": issued.key.name, "secret": issued.plaintext},
        notice=f"The key {issued.key.name} is made.",
    )


@router.post("/portal/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(
    key_id: uuid.UUID, request: Request, session: SessionDep, clock: ClockDep, posted: PostedBy
) -> Response:
    """Revoke one of the partner's keys: it stops at once (a suspended partner may too: it only narrows access)."""
    frame = await _portal(session, posted, "keys")
    if not isinstance(frame, Portal):
        return frame
    if not frame.may(Permission.API_KEYS_WRITE):
        return await _keys_page(session, frame, status_code=403)
    ctx = context(request, actor_of(posted).caller, clock)
    try:
        key = await attempt(
            session, lambda: api_keys.revoke(session, ctx, key_id, kinds=["partner"], partner_id=frame.partner_id)
        )
    except DomainError as refusal:
        return await _keys_page(session, frame, status_code=status_of(refusal), problem=refusal.detail)
    return await _keys_page(session, frame, notice=f"The key {key.name} ({key.prefix}…) is revoked.")
