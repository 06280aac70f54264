"""Public pages: sign-in, sign-out, invitation acceptance and password reset."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.domain import people
from app.domain.errors import DomainError
from app.domain.rules.roles import Kind
from app.routers.deps import SESSION_COOKIE, ClockDep, SessionDep, SettingsDep, context, public_context
from app.routers.pages.common import (
    PostedBy,
    SignInFirst,
    SignInForm,
    actor_of,
    client_of,
    errors_of,
    home_of,
    render,
    see,
    viewer_of,
)

router = APIRouter(include_in_schema=False)

# --- public pages -------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep) -> Response:
    """The start: the signed-in user's home (the portal or the console), else the sign-in page."""
    try:
        return see(home_of(await viewer_of(request, session, clock, settings)))
    except SignInFirst:
        return see("/sign-in")


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
            client=client_of(request),
            user_agent=request.headers.get("user-agent"),
            replaces=request.cookies.get(SESSION_COOKIE),
        )
    except DomainError as refusal:  # a counted failure is kept: the request's transaction commits it
        return render("sign_in.html", 400, values={"email": email}, problem=refusal.detail, next=next)
    target = _safe_next(next) or ("/portal" if signed.user.kind == Kind.PARTNER.value else "/console")
    response = see(target)
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
    await people.sign_out(session, context(request, actor_of(posted).caller, clock), posted.row)
    response = see("/sign-in")
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
            errors=errors_of(refusal),
            name=name,
        )
    return see("/sign-in?activated=1")


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
            session, public_context(request, clock), settings, email=email, client=client_of(request)
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
            errors=errors_of(refusal),
        )
    return see("/sign-in?reset=1")
