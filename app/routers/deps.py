"""Dependencies every router shares: the session, the clock, the caller and its context."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import read_cache
from app.db.session import reads_only, unit_of_work
from app.domain import api_keys, partners, people, program
from app.domain.clock import Clock
from app.domain.context import Caller, Context
from app.domain.errors import Forbidden, NotFound, Unauthenticated
from app.routers.fields import PartnerPath
from app.settings import Settings


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(request.app.state.session_factory) as session:
        # What the process holds of keys and terms (app/db/read_cache.py), for this request's reads.
        session.info[read_cache.SESSION_INFO] = request.app.state.read_cache
        if request.method in ("GET", "HEAD") or request.url.path in READS_MOSTLY:  # safe methods only read
            await reads_only(session)
        yield session


READS_MOSTLY = frozenset({"/v1/pricing/quote"})
"""POST routes that read without a transaction as GETs do (`reads_only`): the store's quote, whose
statements each read their own snapshot as they did in a READ COMMITTED transaction, and whose only
write (the R17 flag of a not-for-resale licence, flushed when it has answered) commits by itself."""


# scope="function": the commit runs before the response is sent, so a failed commit is never
# answered with a success.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


# `async def`, not `def`: FastAPI runs plain functions in a thread pool, a thread hop per request.
async def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ClockDep = Annotated[Clock, Depends(_clock)]
SettingsDep = Annotated[Settings, Depends(_settings)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer qpa_…` (admin), `qpp_…` (partner) or `qps_…` (store).",
)


async def _caller(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    client = request.client.host if request.client else "unknown"
    throttle: program.AuthThrottle = request.app.state.auth_throttle
    now = clock.now()
    # Refusals are counted in the request's own transaction and kept (`keep_writes`) when it ends.
    if (retry_after := throttle.retry_after(client, now)) is not None:
        # Only failures are throttled: a right key from a throttled address (one shared, behind a NAT,
        # with whoever sent the wrong keys) still goes through. Telling it apart is no help to someone
        # guessing, as a key holds 256 random bits. A wrong or missing key is answered 429 until the
        # address's minute ends.
        caller = await _valid_key(session, credentials, now)
        if caller is None:
            raise await program.throttled_authentication(session, retry_after=retry_after, now=now)
        request.state.caller = caller
        return caller
    try:
        if credentials is None:
            raise Unauthenticated(
                "Send an API key in the header `Authorization: Bearer <key>`.",
                code="missing_api_key",
            )
        caller = await api_keys.authenticate(session, credentials.credentials, now)
    except Unauthenticated as refused:
        settings: Settings = request.app.state.settings
        throttled = await program.failed_authentication(
            session, throttle, client=client, now=now, limit=settings.failed_auth_limit
        )
        if throttled is not None:
            raise throttled from None
        refused.keep_writes = True
        raise
    request.state.caller = caller
    return caller


async def _valid_key(
    session: AsyncSession, credentials: HTTPAuthorizationCredentials | None, now: datetime
) -> Caller | None:
    """The caller a presented key stands for, or None when it is missing, unknown or revoked."""
    if credentials is None:
        return None
    try:
        return await api_keys.authenticate(session, credentials.credentials, now)
    except Unauthenticated:
        return None


CallerDep = Annotated[Caller, Depends(_caller)]


def _require_admin(scope: str) -> Callable[[Caller], Awaitable[Caller]]:
    async def dependency(caller: CallerDep) -> Caller:
        if caller.kind != "admin":
            raise Forbidden("This route needs an admin key.", code="admin_key_required")
        if scope not in caller.scopes:
            raise Forbidden(f"This admin key lacks the `{scope}` scope.", code="scope_missing")
        return caller

    return dependency


AdminRead = Annotated[Caller, Depends(_require_admin("read"))]
AdminWrite = Annotated[Caller, Depends(_require_admin("write"))]


async def _admin_read_or_partner(caller: CallerDep) -> Caller:
    """An admin with the `read` scope, or any partner: for what the program shows to all of them."""
    if caller.kind == "partner":
        return caller
    if caller.kind != "admin":
        raise Forbidden("This route needs an admin or a partner key.", code="admin_or_partner_key_required")
    return await _require_admin("read")(caller)


AdminReadOrPartner = Annotated[Caller, Depends(_admin_read_or_partner)]


def _partner_access(
    admin_scope: str | None, *, standing: bool = True
) -> Callable[[uuid.UUID, Request, AsyncSession, Caller], Awaitable[Caller]]:
    """The partner itself, or (when `admin_scope` is given) an admin with that scope.

    Another partner's key gets 404, never 403: it must not learn that the partner exists. A write
    (any method but GET and HEAD) with the partner's own key is refused while the partner is
    suspended or terminated, as key creation is (`standing=False` only where the write gives up
    access: revoking a key).
    """

    async def dependency(partner_id: PartnerPath, request: Request, session: SessionDep, caller: CallerDep) -> Caller:
        if caller.kind == "partner":
            if caller.partner_id != partner_id:
                raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
            if standing and request.method not in ("GET", "HEAD"):
                await partners.may_write(session, partner_id)
            return caller
        if caller.kind == "admin" and admin_scope is not None:
            if admin_scope not in caller.scopes:
                raise Forbidden(
                    f"This admin key lacks the `{admin_scope}` scope.",
                    code="scope_missing",
                )
            return caller
        raise Forbidden("This route needs the partner's own key.", code="partner_key_required")

    return dependency


PartnerOrAdminRead = Annotated[Caller, Depends(_partner_access("read"))]
PartnerOrAdminWrite = Annotated[Caller, Depends(_partner_access("write"))]
PartnerSelf = Annotated[Caller, Depends(_partner_access(None))]
PartnerOrAdminRevoke = Annotated[Caller, Depends(_partner_access("write", standing=False))]
"""For writes that only give access up: a suspended or terminated partner may still make them."""


SESSION_COOKIE = "partners_session"
CSRF_HEADER = "X-CSRF-Token"
SECOND_FACTOR_SETUP = ("/v1/account/second-factor", "/v1/sessions/current", "/v1/account")
OWN_ACCOUNT = ("/v1/account", "/v1/sessions/current")
"""A user's own account and session: open to it whatever its partner's standing."""
"""What a vendor user who must set up its second factor may reach before it has."""


async def _account_actor(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> people.Actor:
    """Who calls an account route: an admin key (its `read` scope for reads, `write` for the rest), or
    a signed-in user by its session cookie. The session is checked here, and here only: its user still
    active, its partner not terminated, not idle or expired, and, for anything but a read, the CSRF
    token of the session in the `X-CSRF-Token` header."""
    if credentials is not None:
        caller = await _caller(request, session, clock, credentials)
        if caller.kind != "admin":
            raise Forbidden(
                "Account routes take a signed-in user's session, or an admin key.", code="admin_key_required"
            )
        scope = "read" if request.method in ("GET", "HEAD") else "write"
        if scope not in caller.scopes:
            raise Forbidden(f"This admin key lacks the `{scope}` scope.", code="scope_missing")
        return people.Actor(caller, None)
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise Unauthenticated("Sign in first (a session), or give an admin key.", code="unauthenticated")
    now = clock.now()
    current = await people.current(session, settings, secret, now)
    if request.method not in ("GET", "HEAD") and not people.csrf_matches(
        current.row, request.headers.get(CSRF_HEADER, "")
    ):
        raise Forbidden(
            f"A request that changes anything sends the session's CSRF token as `{CSRF_HEADER}`.",
            code="csrf_failed",
        )
    if people.needs_second_factor_setup(settings, current.user) and not request.url.path.startswith(
        SECOND_FACTOR_SETUP
    ):
        raise Forbidden(
            "Set up the second factor first (POST /v1/account/second-factor): the vendor requires it.",
            code="second_factor_setup_required",
        )
    user = current.user
    if (
        user.partner_id is not None
        and request.method not in ("GET", "HEAD")
        and not request.url.path.startswith(OWN_ACCOUNT)
    ):
        await partners.may_write(session, user.partner_id)  # a suspended partner's users read, change nothing
    if now - current.row.last_seen_at >= SESSION_TOUCH:
        if request.method in ("GET", "HEAD"):  # the request's own transaction only reads
            async with unit_of_work(request.app.state.session_factory, purpose="a session's last request") as touch:
                await people.touch(touch, current.row, now)
        else:
            await people.touch(session, current.row, now)
    caller = Caller(kind="user", user_id=user.id, partner_id=user.partner_id, role=user.role)
    request.state.caller = caller
    request.state.user_session = current.row
    return people.Actor(caller, user)


SESSION_TOUCH = timedelta(minutes=1)
"""A session's last request is written at most once a minute (idle expiry counts in minutes)."""
AccountActor = Annotated[people.Actor, Depends(_account_actor)]


def context(request: Request, caller: Caller, clock: Clock) -> Context:
    return Context(
        caller=caller,
        now=clock.now(),
        request_id=getattr(request.state, "request_id", None),
    )


def public_context(request: Request, clock: Clock) -> Context:
    return context(request, Caller(kind="public"), clock)


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query_parameters(request: Request) -> None:
    """Refuse query parameters an operation does not declare: a misspelt filter must not
    silently widen a listing."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    allowed = _ALLOWED_QUERY.get(id(route))
    if allowed is None:
        allowed = _ALLOWED_QUERY[id(route)] = _query_names(route.dependant)
    unknown = sorted(set(request.query_params.keys()) - allowed)
    if unknown:
        raise RequestValidationError(
            [{"loc": ("query", name), "msg": "Unknown query parameter", "type": "extra_forbidden"} for name in unknown]
        )


_ALLOWED_QUERY: dict[int, set[str]] = {}  # routes live as long as the process


async def _require_store(caller: CallerDep) -> Caller:
    if caller.kind != "store" or "store" not in caller.scopes:
        raise Forbidden("This route needs the store's key.", code="store_key_required")
    return caller


StoreCaller = Annotated[Caller, Depends(_require_store)]


async def _admin_read_or_store(caller: CallerDep) -> Caller:
    if caller.kind == "store" and "store" in caller.scopes:
        return caller
    return await _require_admin("read")(caller)


AdminReadOrStore = Annotated[Caller, Depends(_admin_read_or_store)]
