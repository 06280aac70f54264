"""People: sign-in and sessions, invitations, password resets, users and their roles, the signed-in
account, and the mail log. Account routes take a signed-in user's session (cookie plus CSRF header)
or an admin key; what a user may do is its role's (`app.domain.rules.roles`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import MailMessage, User
from app.domain import mail as mail_domain
from app.domain import people
from app.domain.clock import Clock
from app.domain.errors import Invalid, InvalidTransition
from app.domain.rules import roles
from app.domain.rules.roles import Kind, Permission, Role
from app.errors import problem_responses
from app.routers import convert
from app.routers.deps import (
    SESSION_COOKIE,
    AccountActor,
    ClockDep,
    SessionDep,
    SettingsDep,
    context,
    public_context,
)
from app.routers.fields import LINE_PATTERN, Cursor, PartnerPath, page_size
from app.routers.schemas.people import (
    Accepted,
    AcceptInvitation,
    AccountPatch,
    MailList,
    MailOut,
    PartnerInvite,
    PasswordChange,
    RecoveryCodes,
    ResetConfirm,
    ResetRequest,
    RoleName,
    SecondFactorCode,
    SecondFactorSetup,
    SessionOut,
    SignIn,
    UserList,
    UserOut,
    UserPatch,
    VendorInvite,
)
from app.settings import Settings

router = APIRouter(prefix="/v1", tags=["people"])
UserPath = Annotated[uuid.UUID, Path(description="The user's id.")]
MailPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="The message's id, as the mail log gives it.")]


def user_out(user: User) -> UserOut:
    switchable = {t.value for t in mail_domain.Template} - {t.value for t in mail_domain.ACCOUNT_MAIL}
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        kind=cast(Literal["partner", "vendor"], user.kind),
        partner_id=user.partner_id,
        role=cast(RoleName, roles.NAMES[Role(user.role)]),
        status=cast(Literal["invited", "active", "deactivated"], user.status),
        time_zone=user.time_zone,
        second_factor=user.totp_enabled_at is not None,
        notifications_off=sorted(k for k, on in user.notifications.items() if not on and k in switchable),
        created_at=user.created_at,
        activated_at=user.activated_at,
        deactivated_at=user.deactivated_at,
    )


def _session_out(settings: Settings, signed: people.Current | people.SignedIn) -> SessionOut:
    return SessionOut(
        user=user_out(signed.user),
        csrf_token=signed.row.csrf_token,
        expires_at=signed.row.expires_at,
        idle_minutes=settings.session_idle_minutes,
        second_factor_setup_required=people.needs_second_factor_setup(settings, signed.user),
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _signed_in(actor: people.Actor) -> User:
    if actor.user is None:
        raise InvalidTransition(
            "This route is the signed-in user's own: an admin key has no account.", code="user_session_required"
        )
    return actor.user


# --- sessions -----------------------------------------------------------------------------------------


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 422, 429),
    summary="Sign in",
)
async def sign_in(
    body: SignIn, request: Request, response: Response, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> SessionOut:
    """Public. Checks the address, the password and, when it is on, the second factor (`code`), then
    opens a session: the `partners_session` cookie (HttpOnly, SameSite=Lax, Secure outside development) holds
    its random id, and the answer its CSRF token. A session cookie sent along is ended (a new id at every
    sign-in). A wrong address or password is 401 `sign_in_failed` alike whether the account exists or
    not; too many failures per account or per address are 429. A terminated partner's users are 403
    `partner_terminated`, a deactivated user 403 `user_deactivated`."""
    signed = await people.sign_in(
        session,
        public_context(request, clock),
        settings,
        email=body.email,
        password=body.password,
        code=body.code,
        client=_client(request),
        user_agent=request.headers.get("user-agent"),
        replaces=request.cookies.get(SESSION_COOKIE),
    )
    response.set_cookie(
        SESSION_COOKIE,
        signed.secret,
        max_age=settings.session_absolute_hours * 3600,
        httponly=True,
        secure=settings.environment != "development",
        samesite="lax",
        path="/",
    )
    return _session_out(settings, signed)


@router.get("/sessions/current", responses=problem_responses(401, 403, 409), summary="The current session")
async def current_session(request: Request, actor: AccountActor, settings: SettingsDep) -> SessionOut:
    """A signed-in user: its session, with the CSRF token to send with changes."""
    user = _signed_in(actor)
    return _session_out(settings, people.Current(request.state.user_session, user))


@router.delete(
    "/sessions/current",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 409),
    summary="Sign out",
)
async def sign_out(
    request: Request, response: Response, session: SessionDep, clock: ClockDep, actor: AccountActor
) -> Response:
    """A signed-in user (CSRF token): ends the session and clears its cookie."""
    _signed_in(actor)
    await people.sign_out(session, context(request, actor.caller, clock), request.state.user_session)
    answer = Response(status_code=status.HTTP_204_NO_CONTENT)
    answer.delete_cookie(SESSION_COOKIE, path="/")
    return answer


# --- invitations and passwords --------------------------------------------------------------------------


@router.post("/invitations/accept", responses=problem_responses(409, 422), summary="Accept an invitation")
async def accept_invitation(
    body: AcceptInvitation, request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> UserOut:
    """Public. The invitation link's token and a password (at least 12 characters, not weak: 422
    `password_too_short`, `password_too_weak`) activate the account; then sign in. A link used,
    expired or replaced is 409 `link_not_valid`."""
    ctx = public_context(request, clock)
    return user_out(
        await people.accept_invitation(session, ctx, settings, token=body.token, password=body.password, name=body.name)
    )


@router.post(
    "/password-resets",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(422, 429),
    summary="Ask for a password reset",
)
async def request_password_reset(
    body: ResetRequest, request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> Accepted:
    """Public. Mails a single-use link to the account of that address, if there is an active one;
    answered alike either way. Throttled per address and per client (429)."""
    ctx = public_context(request, clock)
    await people.request_reset(session, ctx, settings, email=body.email, client=_client(request))
    return Accepted(
        status="accepted",
        detail="If an active account has this address, a link to choose a new password is on its way.",
    )


@router.post(
    "/password-resets/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(409, 422),
    summary="Set a new password",
)
async def confirm_password_reset(
    body: ResetConfirm, request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> Response:
    """Public. The reset link's token and a new password: every session of the account ends."""
    await people.reset_password(
        session, public_context(request, clock), settings, token=body.token, password=body.password
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- the signed-in account -------------------------------------------------------------------------------


@router.get("/account", responses=problem_responses(401, 403, 409), summary="The signed-in user")
async def get_account(actor: AccountActor) -> UserOut:
    """A signed-in user: itself."""
    return user_out(_signed_in(actor))


@router.patch("/account", responses=problem_responses(401, 403, 409, 422), summary="Change the signed-in user")
async def patch_account(
    body: AccountPatch, request: Request, session: SessionDep, clock: ClockDep, actor: AccountActor
) -> UserOut:
    """A signed-in user (CSRF token): its name, time zone, and which notifications it receives."""
    user = _signed_in(actor)
    ctx = context(request, actor.caller, clock)
    if body.name is not None or body.time_zone is not None:
        user = await people.update(session, ctx, actor, user.id, name=body.name, time_zone=body.time_zone)
    if body.notifications is not None:
        user = await people.set_notifications(session, ctx, user, body.notifications)
    return user_out(user)


@router.post(
    "/account/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 409, 422),
    summary="Change the password",
)
async def change_password(
    body: PasswordChange,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: AccountActor,
) -> Response:
    """A signed-in user (CSRF token): the current password and a new one; every session ends, this one
    too (sign in again)."""
    user = _signed_in(actor)
    ctx = context(request, actor.caller, clock)
    await people.change_password(session, ctx, settings, user, current=body.current_password, password=body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/account/second-factor",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409),
    summary="Start setting up the second factor",
)
async def start_second_factor(
    request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep, actor: AccountActor
) -> SecondFactorSetup:
    """A signed-in vendor user (CSRF token): a new TOTP secret for an authenticator app; it is in force
    once `/confirm` gets a first code from it."""
    user = _signed_in(actor)
    secret, uri = await people.start_second_factor(session, context(request, actor.caller, clock), settings, user)
    return SecondFactorSetup(secret=secret, uri=uri)


@router.post(
    "/account/second-factor/confirm",
    responses=problem_responses(401, 403, 409, 422),
    summary="Turn the second factor on",
)
async def confirm_second_factor(
    body: SecondFactorCode,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: AccountActor,
) -> RecoveryCodes:
    """A signed-in vendor user (CSRF token): the authenticator's first code turns the second factor on;
    the answer holds ten one-time recovery codes, shown only now."""
    user = _signed_in(actor)
    ctx = context(request, actor.caller, clock)
    return RecoveryCodes(recovery_codes=await people.confirm_second_factor(session, ctx, settings, user, body.code))


@router.post(
    "/account/second-factor/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 409),
    summary="Turn the second factor off",
)
async def disable_second_factor(
    body: SecondFactorCode,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: AccountActor,
) -> Response:
    """A signed-in vendor user (CSRF token), with a current code or a recovery code; refused when the
    vendor requires the second factor."""
    user = _signed_in(actor)
    await people.end_second_factor(session, context(request, actor.caller, clock), settings, user, body.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- users ---------------------------------------------------------------------------------------------


def _users(rows: list[User], limit: int) -> UserList:
    page = rows[:limit]
    more = len(rows) > limit
    return UserList(
        items=[user_out(u) for u in page],
        next_cursor=convert.encode_cursor(page[-1].email) if more else None,
        has_more=more,
    )


def _after(cursor: str | None) -> str | None:
    return convert.decode_text_cursor(cursor)


async def _invite(
    request: Request,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    actor: people.Actor,
    body: VendorInvite | PartnerInvite,
    partner_id: uuid.UUID | None,
) -> UserOut:
    """An invitation to the vendor's users (`partner_id` None) or to a partner's team."""
    role = roles.role_named(Kind.PARTNER if partner_id else Kind.VENDOR, body.role)
    assert role is not None, "the body's schema names only roles of its kind"
    invited = await people.invite(
        session,
        context(request, actor.caller, clock),
        settings,
        actor,
        email=body.email,
        role=role,
        partner_id=partner_id,
        name=body.name,
        time_zone=body.time_zone,
    )
    return user_out(invited.user)


@router.get("/users", responses=problem_responses(401, 403, 422), summary="The vendor's users")
async def list_vendor_users(
    session: SessionDep,
    actor: AccountActor,
    limit: Annotated[int, page_size(1000)] = 100,
    cursor: Cursor = None,
) -> UserList:
    """An admin key (read) or a vendor user whose role reads users: the vendor's users, by address."""
    rows = await people.users(session, actor, partner_id=None, limit=limit + 1, after=_after(cursor))
    return _users(rows, limit)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
    summary="Invite a vendor user",
)
async def invite_vendor_user(
    body: VendorInvite,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: AccountActor,
) -> UserOut:
    """An admin key (write) or a vendor `admin`: invites a vendor user, mailed a link to set its password.
    An address that has an account already is 409 `user_exists`."""
    return await _invite(request, session, clock, settings, actor, body, None)


@router.get("/partners/{partner_id}/users", responses=problem_responses(401, 403, 404, 422), summary="A partner's team")
async def list_partner_users(
    partner_id: PartnerPath,
    session: SessionDep,
    actor: AccountActor,
    limit: Annotated[int, page_size(1000)] = 100,
    cursor: Cursor = None,
) -> UserList:
    """The partner's own users, the vendor's, or an admin key (read): the partner's users, by address.
    Another partner's user gets 404."""
    rows = await people.users(session, actor, partner_id=partner_id, limit=limit + 1, after=_after(cursor))
    return _users(rows, limit)


@router.post(
    "/partners/{partner_id}/users",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Invite a partner's user",
)
async def invite_partner_user(
    partner_id: PartnerPath,
    body: PartnerInvite,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: AccountActor,
) -> UserOut:
    """The partner's `owner`, a vendor `admin` or `partner_manager`, or an admin key (write): invites a
    member of the partner's team, mailed a link to set its password."""
    return await _invite(request, session, clock, settings, actor, body, partner_id)


@router.get("/users/{user_id}", responses=problem_responses(401, 403, 404, 422), summary="Read a user")
async def get_user(user_id: UserPath, session: SessionDep, actor: AccountActor) -> UserOut:
    """Whoever may read the user's team (or the user itself)."""
    return user_out(await people.get(session, actor, user_id))


@router.patch("/users/{user_id}", responses=problem_responses(401, 403, 404, 409, 422), summary="Change a user")
async def patch_user(
    user_id: UserPath, body: UserPatch, request: Request, session: SessionDep, clock: ClockDep, actor: AccountActor
) -> UserOut:
    """Whoever may invite to the user's role and the new one: its role; who manages the team: its name
    and time zone. A user does not change its own role (409 `own_role`)."""
    ctx = context(request, actor.caller, clock)
    target = await people.get(session, actor, user_id)
    role = None
    if body.role is not None:
        role = roles.role_named(Kind(target.kind), body.role)
        if role is None:
            raise Invalid(f"A {target.kind} user has no {body.role} role.", code="role_kind_mismatch", field="role")
    return user_out(
        await people.update(session, ctx, actor, user_id, role=role, name=body.name, time_zone=body.time_zone)
    )


@router.post(
    "/users/{user_id}/deactivate", responses=problem_responses(401, 403, 404, 409, 422), summary="Deactivate a user"
)
async def deactivate_user(
    user_id: UserPath, request: Request, session: SessionDep, clock: ClockDep, actor: AccountActor
) -> UserOut:
    """Who manages the user's team: the user can no longer sign in, and its sessions end."""
    return user_out(await people.deactivate(session, context(request, actor.caller, clock), actor, user_id))


# --- the mail log -----------------------------------------------------------------------------------------


def _mail(row: MailMessage) -> MailOut:
    return MailOut(
        id=row.id or 0,
        to=row.to_address,
        user_id=row.user_id,
        template=row.template,
        subject=row.subject,
        state=cast(Literal["pending", "sent", "failed", "off"], row.state),
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


@router.get("/mail", responses=problem_responses(401, 403, 422), summary="The mail log")
async def mail_log(
    session: SessionDep,
    settings: SettingsDep,
    actor: AccountActor,
    state: Annotated[Literal["pending", "sent", "failed", "off"] | None, Query(description="Only these.")] = None,
    to: Annotated[
        str | None, Query(max_length=320, pattern=LINE_PATTERN, description="Only those to this address.")
    ] = None,
    limit: Annotated[int, page_size(1000)] = 100,
    cursor: Cursor = None,
) -> MailList:
    """An admin key (read) or a vendor user whose role reads the log: every message the program sent
    or is to send, newest first: to whom, which, its state, attempts and last error (never its body)."""
    people.require(actor, Permission.MAIL_LOG_READ)
    rows = list(await mail_domain.log(session, limit + 1, before=convert.decode_int_cursor(cursor), state=state, to=to))
    page = rows[:limit]
    return MailList(
        mail=settings.mail_mode,
        items=[_mail(r) for r in page],
        next_cursor=convert.encode_cursor(page[-1].id) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


@router.post(
    "/mail/{message_id}/retry", responses=problem_responses(401, 403, 404, 409, 422), summary="Send a message again"
)
async def retry_mail(
    message_id: MailPath, request: Request, session: SessionDep, clock: ClockDep, actor: AccountActor
) -> MailOut:
    """An admin key (write) or a vendor `admin`: a `failed` message is tried again now."""
    people.require(actor, Permission.SETTINGS_WRITE)
    return _mail(await mail_domain.retry(session, context(request, actor.caller, clock), message_id))
