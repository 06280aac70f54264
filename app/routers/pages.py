"""Pages people use, server-rendered by the app (Jinja2), every asset served by the app itself: sign-in,
invitation acceptance and password reset; the partner portal (`/portal`) and the program console
(`/console`). They call the same use cases as the API, with the sessions, CSRF tokens and role table
of `app.domain.people`. Every page works without JavaScript; forms keep what was typed after a
refusal and say what to fix next to the field."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import partners as partners_repo
from app.domain import dashboards, partners, people
from app.domain import mail as mail_domain
from app.domain import statements as statements_domain
from app.domain import status as status_domain
from app.domain.context import Caller
from app.domain.errors import DomainError, Forbidden, Unauthenticated
from app.domain.rules.partner_status import PartnerStatus, StatusAction
from app.domain.rules.roles import Kind, Permission, Role, may
from app.routers.deps import SESSION_COOKIE, ClockDep, SessionDep, SettingsDep, context, public_context
from app.routers.statements import statement_csv

router = APIRouter(include_in_schema=False)
SignInForm = Annotated[str, Form(max_length=320)]


@functools.cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("app", "templates/pages"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
    )


def render(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    values = {"user": None, "csrf": "", "area": None, "notice": None, "problem": None, "errors": {}, **values}
    return HTMLResponse(_templates().get_template(template).render(values), status_code=status_code)


def _see(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _errors(refusal: DomainError) -> dict[str, str]:
    field = refusal.extra.get("field")
    return {str(field): refusal.detail} if field else {}


# --- who is signed in -----------------------------------------------------------------------------------


class SignInFirst(Exception):
    """Raised by a page that needs a signed-in user: answered by a redirect to the sign-in page."""

    def __init__(self, path: str) -> None:
        self.path = path


async def _viewer(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep) -> people.Current:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise SignInFirst(request.url.path)
    try:
        current = await people.current(session, settings, secret, clock.now())
    except (Unauthenticated, Forbidden) as exc:
        raise SignInFirst(request.url.path) from exc
    request.state.caller = Caller(
        kind="user", user_id=current.user.id, partner_id=current.user.partner_id, role=current.user.role
    )
    return current


Viewer = Annotated[people.Current, Depends(_viewer)]


async def _form_csrf(request: Request, viewer: Viewer) -> people.Current:
    """A form posted in a session carries the session's CSRF token (`people.csrf_matches`, the one
    check the API's header goes through too)."""
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not people.csrf_matches(viewer.row, sent):
        raise Forbidden("The form's CSRF token is missing or not this session's.", code="csrf_failed")
    return viewer


PostedBy = Annotated[people.Current, Depends(_form_csrf)]


def _home(current: people.Current) -> str:
    return "/portal" if current.user.kind == Kind.PARTNER.value else "/console"


def _actor(current: people.Current) -> people.Actor:
    user = current.user
    return people.Actor(Caller(kind="user", user_id=user.id, partner_id=user.partner_id, role=user.role), user)


# --- public pages -------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    return _see("/sign-in")


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, activated: int = 0, reset: int = 0, next: str = "") -> Response:
    notice = None
    if activated:
        notice = "Your account is active: sign in."
    elif reset:
        notice = "Your password is changed: sign in with it."
    return render("sign_in.html", values={"email": ""}, notice=notice, next=next)


def _safe_next(target: str) -> str | None:
    """Only a path of this site (no scheme, no host): never an open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    email: SignInForm,
    password: Annotated[str, Form(max_length=1024)],
    code: Annotated[str, Form(max_length=32)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        signed = await people.sign_in(
            session,
            public_context(request, clock),
            settings,
            email=email,
            password=password,
            code=code or None,
            client=_client(request),
            user_agent=request.headers.get("user-agent"),
            replaces=request.cookies.get(SESSION_COOKIE),
        )
    except DomainError as refusal:  # a counted failure is kept: the request's transaction commits it
        return render("sign_in.html", 400, values={"email": email}, problem=refusal.detail, next=next)
    target = _safe_next(next) or ("/portal" if signed.user.kind == Kind.PARTNER.value else "/console")
    response = _see(target)
    response.set_cookie(
        SESSION_COOKIE,
        signed.secret,
        max_age=settings.session_absolute_hours * 3600,
        httponly=True,
        secure=settings.environment != "development",
        samesite="lax",
        path="/",
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep, clock: ClockDep, posted: PostedBy) -> Response:
    await people.sign_out(session, context(request, _actor(posted).caller, clock), posted.row)
    response = _see("/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/invitation", response_class=HTMLResponse)
async def invitation_page(token: str = "") -> Response:
    return _set_password_page("/invitation", token, invitation=True)


def _set_password_page(
    action: str,
    token: str,
    *,
    invitation: bool,
    status_code: int = 200,
    problem: str | None = None,
    errors: dict[str, str] | None = None,
    name: str = "",
) -> HTMLResponse:
    return render(
        "set_password.html",
        status_code,
        heading="Set your password" if invitation else "Choose a new password",
        button="Activate my account" if invitation else "Change my password",
        action=action,
        token=token,
        ask_name=invitation,
        values={"name": name},
        problem=problem,
        errors=errors or {},
    )


@router.post("/invitation", response_class=HTMLResponse)
async def accept_invitation(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        async with session.begin_nested():  # refused, nothing of it stays (the link is not spent)
            await people.accept_invitation(
                session, public_context(request, clock), settings, token=token, password=password, name=name or None
            )
    except DomainError as refusal:
        return _set_password_page(
            "/invitation",
            token,
            invitation=True,
            status_code=400,
            problem=refusal.detail,
            errors=_errors(refusal),
            name=name,
        )
    return _see("/sign-in?activated=1")


@router.get("/password-reset", response_class=HTMLResponse)
async def password_reset_page(token: str = "") -> Response:
    if token:
        return _set_password_page("/password-reset/confirm", token, invitation=False)
    return render("reset_request.html", values={"email": ""}, sent=False)


@router.post("/password-reset", response_class=HTMLResponse)
async def request_password_reset(
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep, email: SignInForm
) -> Response:
    try:
        await people.request_reset(
            session, public_context(request, clock), settings, email=email, client=_client(request)
        )
    except DomainError as refusal:  # the throttle's count is kept, as the API keeps it
        return render("reset_request.html", 429, values={"email": email}, sent=False, problem=refusal.detail)
    return render("reset_request.html", values={"email": email}, sent=True)


@router.post("/password-reset/confirm", response_class=HTMLResponse)
async def confirm_password_reset(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    try:
        async with session.begin_nested():  # refused, nothing of it stays (the link is not spent)
            await people.reset_password(
                session, public_context(request, clock), settings, token=token, password=password
            )
    except DomainError as refusal:
        return _set_password_page(
            "/password-reset/confirm",
            token,
            invitation=False,
            status_code=400,
            problem=refusal.detail,
            errors=_errors(refusal),
        )
    return _see("/sign-in?reset=1")


# --- the partner portal ------------------------------------------------------------------------------------


@router.get("/portal", response_class=HTMLResponse)
async def portal(session: SessionDep, clock: ClockDep, viewer: Viewer) -> Response:
    user = viewer.user
    if user.kind != Kind.PARTNER.value or user.partner_id is None:
        return _see(_home(viewer))
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
        return _see(_home(viewer))
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
            "amount": f"{e.points:+,}" if kind == "points" else _money(e),
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
        return _see(_home(viewer))
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
        return _see("/portal/statements")  # which says why
    return await statement_csv(session, user.partner_id, statement_id)


def _money(entry: Any) -> str:
    sign = "-" if entry.amount < 0 else "+"
    return f"{sign}{abs(entry.amount) // 100:,}.{abs(entry.amount) % 100:02d} {entry.currency}"


NOTIFICATIONS = (
    ("partner_approved", "my partner is approved"),
    ("lead_offered", "a lead is offered to my partner"),
    ("registration_expiring", "a registration is about to expire"),
    ("registration_expired", "a registration expired"),
    ("statement_ready", "a statement is approved"),
    ("statement_paid", "a statement is paid"),
    ("level_changed", "my partner's level changes"),
    ("directory_reviewed", "our directory text is approved or rejected"),
    ("payee_changed", "our payee details change (owners)"),
)
"""The notifications a user can turn off, as the account page words them."""


def _account_page(viewer: people.Current, status_code: int = 200, **values: Any) -> HTMLResponse:
    user = viewer.user
    return render(
        "account.html",
        status_code,
        user=user,
        csrf=viewer.row.csrf_token,
        area="account",
        notifications=NOTIFICATIONS,
        off={k for k, on in user.notifications.items() if not on},
        **{"values": {"name": user.name or "", "time_zone": user.time_zone}, **values},
    )


@router.get("/account", response_class=HTMLResponse)
async def account_page(viewer: Viewer) -> Response:
    return _account_page(viewer)


@router.post("/account", response_class=HTMLResponse)
async def save_account(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    name: Annotated[str, Form(max_length=200)] = "",
    time_zone: Annotated[str, Form(max_length=64)] = "",
    notify: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The user's name, time zone and notifications: a box left unticked turns that one off."""
    actor = _actor(posted)
    ctx = context(request, actor.caller, clock)
    chosen = set(notify or [])
    try:
        async with session.begin_nested():
            user = await people.update(
                session, ctx, actor, posted.user.id, name=name.strip() or None, time_zone=time_zone.strip() or None
            )
            await people.set_notifications(session, ctx, user, {k: k in chosen for k, _ in NOTIFICATIONS})
    except DomainError as refusal:
        values = {"name": name, "time_zone": time_zone}
        return _account_page(posted, 400, values=values, problem=refusal.detail, errors=_errors(refusal))
    return _account_page(posted, notice="Saved.")


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
        return _see(_home(viewer))
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
    actor = _actor(posted)
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


def sign_in_first(path: str) -> RedirectResponse:
    return _see(f"/sign-in?next={quote(path)}")
