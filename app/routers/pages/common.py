"""What every page shares: the templates, who is signed in, the form's CSRF check, and small formatting."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import people
from app.domain.context import Caller
from app.domain.errors import DomainError, Forbidden, Unauthenticated
from app.domain.rules.roles import Kind
from app.errors import STATUS_FOR, ProblemResponse
from app.messages import sentence
from app.routers.deps import SESSION_COOKIE, ClockDep, SessionDep, SettingsDep

SignInForm = Annotated[str, Form(max_length=320)]


@functools.cache
def templates() -> Environment:
    return Environment(
        loader=PackageLoader("app", "templates/pages"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
    )


def render(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    values = {"user": None, "csrf": "", "area": None, "notice": None, "problem": None, "errors": {}, **values}
    return HTMLResponse(templates().get_template(template).render(values), status_code=status_code)


def see(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def errors_of(refusal: DomainError) -> dict[str, str]:
    field = refusal.extra.get("field")
    return {str(field): refusal.detail} if field else {}


# --- who is signed in -----------------------------------------------------------------------------------


class SignInFirst(Exception):
    """Raised by a page that needs a signed-in user: answered by a redirect to the sign-in page."""

    def __init__(self, path: str) -> None:
        self.path = path


async def viewer_of(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep) -> people.Current:
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


Viewer = Annotated[people.Current, Depends(viewer_of)]


async def form_csrf(request: Request, viewer: Viewer) -> people.Current:
    """A form posted in a session carries the session's CSRF token (`people.csrf_matches`, the one
    check the API's header goes through too)."""
    form = await request.form()
    sent = form.get("csrf_token")
    if not isinstance(sent, str) or not people.csrf_matches(viewer.row, sent):
        raise Forbidden("The form's CSRF token is missing or not this session's.", code="csrf_failed")
    return viewer


PostedBy = Annotated[people.Current, Depends(form_csrf)]


def home_of(current: people.Current) -> str:
    return "/portal" if current.user.kind == Kind.PARTNER.value else "/console"


def actor_of(current: people.Current) -> people.Actor:
    user = current.user
    return people.Actor(Caller(kind="user", user_id=user.id, partner_id=user.partner_id, role=user.role), user)


def money(entry: Any) -> str:
    sign = "-" if entry.amount < 0 else "+"
    return f"{sign}{abs(entry.amount) // 100:,}.{abs(entry.amount) % 100:02d} {entry.currency}"


def sign_in_first(path: str) -> RedirectResponse:
    return see(f"/sign-in?next={quote(path)}")


ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], data: dict[str, Any]) -> tuple[ModelT | None, dict[str, str]]:
    """A form's values read by the API's own request model: the model, or each refused field with the
    sentence the API's 422 says of it (`app.messages.sentence`)."""
    try:
        return model.model_validate(data), {}
    except ValidationError as refused:
        errors: dict[str, str] = {}
        for err in refused.errors():
            field = str(err["loc"][0]) if err.get("loc") else "form"
            errors.setdefault(field, sentence(err))
        return None, errors


PAGE_PATHS = ("/sign-in", "/sign-out", "/invitation", "/password-reset", "/apply", "/portal", "/console", "/account")
"""The paths of pages: a refusal there is a page, not problem+json."""


def is_page(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") or path.startswith(p + ".") for p in PAGE_PATHS)


INVALID_FORM = "The form has invalid or missing values; each is listed below."
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def answering_pages(handler: Handler) -> Callable[[Request, Any], Awaitable[Response]]:
    """An API error handler that, on a page's path, answers the same status and sentence as a page
    (a browser shows it; a form's refusal that a page does not catch itself lands here)."""

    async def handle(request: Request, exc: Any) -> Response:
        if isinstance(exc, RequestValidationError) and is_page(request.url.path):
            # A form's values (never JSON, which the API's handler would answer with 415).
            lines = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {sentence(e)}" for e in exc.errors()]
            return render("refused.html", 422, title="Invalid request", problem=INVALID_FORM, fields=lines)
        answered = handler(request, exc)
        answer = await answered if inspect.isawaitable(answered) else answered
        if not is_page(request.url.path) or answer.status_code < 400:
            return answer
        said: dict[str, Any] = answer.problem if isinstance(answer, ProblemResponse) else {}
        page = render(
            "refused.html",
            answer.status_code,
            title=str(said.get("title") or "Refused"),
            problem=str(said.get("detail") or "The request was refused."),
            fields=[
                f"{e.get('field', '').removeprefix('body.')}: {e.get('message', '')}" for e in said.get("errors", [])
            ],
        )
        for name in ("retry-after", "allow"):
            if name in answer.headers:
                page.headers[name] = answer.headers[name]
        return page

    return handle


# --- running a form's use case ---------------------------------------------------------------------------

T = TypeVar("T")


def status_of(refusal: DomainError) -> int:
    """The status a page answers a refusal with: the API's for it (`app.errors.STATUS_FOR`), else 400."""
    return next((code for kind, code in STATUS_FOR if isinstance(refusal, kind)), 400)


async def attempt(session: AsyncSession, work: Callable[[], Awaitable[T]]) -> T:
    """Run a use case in a savepoint: undone when it refuses, except what a refusal keeps on purpose
    (`keep_writes`, as the unit of work keeps it for the API: a refused registration stays recorded)."""
    kept: DomainError | None = None
    async with session.begin_nested():
        try:
            return await work()
        except DomainError as refusal:
            if not refusal.keep_writes:
                raise
            kept = refusal  # leaving the block normally keeps the savepoint's writes
    assert kept is not None
    raise kept
