"""People: user accounts, invitations, passwords, browser sessions and the second factor.

A user belongs to one partner or to the vendor and has one role (`app.domain.rules.roles`). Accounts
start as invitations: a single-use link, mailed, sets the first password. Sign-in makes a server-side
session (the browser's cookie holds a random id; the table its SHA-256), ended by idling, by its
absolute expiry, by sign-out, or when the user is deactivated, changes its password, or its partner is
terminated. Failed sign-ins are throttled per account and per address, answered alike whether the
account exists or not, and audited. Every change to a user is in the audit log.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

import pyotp
from cryptography.fernet import InvalidToken
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import partners as partners_repo
from app.db.repositories import people as repo
from app.db.repositories import program as limits_repo
from app.db.tables import RecoveryCode, User, UserSession, UserToken
from app.domain import audit, mail, passwords, sealed
from app.domain.context import Caller, Context
from app.domain.errors import Conflict, Forbidden, Invalid, InvalidTransition, NotFound, RateLimited, Unauthenticated
from app.domain.rules import roles
from app.domain.rules.partner_status import PartnerStatus
from app.domain.rules.roles import Kind, Permission, Role
from app.settings import Settings

AUDITED = ("email", "name", "kind", "partner_id", "role", "status", "time_zone")
RECOVERY_CODES = 10
TOTP_ISSUER = "Qalyptus Partner Program"
ZONES = frozenset(available_timezones())


# --- who may ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who acts on accounts: an admin key (may do anything), or a signed-in user with its role."""

    caller: Caller
    user: User | None

    @property
    def role(self) -> Role | None:
        return Role(self.user.role) if self.user is not None else None


def require(actor: Actor, permission: Permission, partner_id: uuid.UUID | None = None) -> None:
    """The one check of the role table: the actor's role grants `permission` on `partner_id`'s data
    (None: the program's). An admin key passes; a partner's key never acts on accounts."""
    if actor.caller.kind == "admin" and actor.user is None:
        return
    if actor.user is None:
        raise Forbidden("Accounts are managed by their users or with an admin key.", code="forbidden")
    role = Role(actor.user.role)
    own = str(actor.user.partner_id) if actor.user.partner_id else None
    if not roles.may(role, permission) or not roles.may_act_for(role, own, str(partner_id) if partner_id else None):
        if partner_id is not None and roles.KIND_OF[role] is Kind.PARTNER and str(partner_id) != own:
            raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
        raise Forbidden(f"The {roles.NAMES[role]} role may not do this ({permission.value}).", code="role_not_allowed")


# --- users -------------------------------------------------------------------------------------------


def _normal(email: str) -> str:
    return email.strip().lower()


def _zone(time_zone: str) -> str:
    if time_zone not in ZONES:
        raise Invalid(
            f"{time_zone!r} is not an IANA time zone (e.g. Europe/Paris, America/New_York).",
            code="time_zone_unknown",
            field="time_zone",
        )
    return time_zone


def _link(settings: Settings, path: str, secret: str) -> str:
    return f"{settings.public_url.rstrip('/')}{path}?token={secret}"


async def _token(session: AsyncSession, user: User, purpose: str, now: datetime, valid: timedelta) -> str:
    await repo.expire_tokens(session, user.id, purpose, now)
    secret = passwords.new_secret()
    repo.add(
        session,
        UserToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=passwords.digest(secret),
            created_at=now,
            expires_at=now + valid,
        ),
    )
    return secret


async def invite(
    session: AsyncSession,
    ctx: Context,
    settings: Settings,
    actor: Actor | None,
    *,
    email: str,
    role: Role,
    partner_id: uuid.UUID | None,
    name: str | None = None,
    time_zone: str = "Europe/Paris",
) -> Invited:
    """Invite a person: the user is made `invited` and mailed a link that sets its password. `actor`
    None: the service itself (the CLI's first admin, a partner's approval)."""
    kind = roles.KIND_OF[role]
    if (kind is Kind.PARTNER) != (partner_id is not None):
        raise Invalid(
            "A partner's role needs its partner; a vendor role none.", code="role_kind_mismatch", field="role"
        )
    partner = None
    if partner_id is not None:
        partner = await partners_repo.get(session, partner_id)
        if partner is None:
            raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
        if partner.status == PartnerStatus.TERMINATED:
            raise Forbidden("A terminated partner gets no new users.", code="partner_terminated")
    if actor is not None:
        require(actor, Permission.TEAM_WRITE if kind is Kind.PARTNER else Permission.VENDOR_USERS_WRITE, partner_id)
        if actor.role is not None and not roles.may_invite(actor.role, role):
            raise Forbidden(
                f"The {roles.NAMES[actor.role]} role may not invite a {roles.NAMES[role]}.", code="role_not_allowed"
            )
    address = _normal(email)
    if await repo.by_email(session, address) is not None:
        raise Conflict(f"{address} has an account already: one address is one user.", code="user_exists")
    user = User(
        email=address,
        name=name,
        kind=kind.value,
        partner_id=partner_id,
        role=role.value,
        status="invited",
        time_zone=_zone(time_zone),
        notifications={},
        created_at=ctx.now,
        created_by=ctx.actor,
    )
    try:
        async with session.begin_nested():
            repo.add(session, user)
    except IntegrityError as exc:  # invited at the same moment by a concurrent request
        raise Conflict(f"{address} has an account already: one address is one user.", code="user_exists") from exc
    secret = await _token(session, user, "invitation", ctx.now, timedelta(days=settings.invitation_valid_days))
    link = _link(settings, "/invitation", secret)
    inviter = (actor.user.name or actor.user.email) if actor is not None and actor.user is not None else "Qalyptus"
    mail.enqueue(
        session,
        settings,
        ctx.now,
        to=address,
        template=mail.Template.INVITATION,
        values={
            "name": name,
            "inviter": inviter,
            "role": roles.NAMES[role].replace("_", " "),
            "partner": partner.company if partner is not None else None,
            "link": link,
            "expires": (ctx.now + timedelta(days=settings.invitation_valid_days)).strftime("%Y-%m-%d %H:%M UTC"),
        },
        user_id=user.id,
        refs={"partner_id": partner_id} if partner_id else {},
    )
    audit.record(
        session, ctx, action="user.invited", object_type="user", object_id=user.id, after=audit.snapshot(user, AUDITED)
    )
    return Invited(user, link)


@dataclass(frozen=True)
class Invited:
    user: User
    link: str
    """The invitation link, as mailed (the CLI prints it for the first admin)."""


async def _spend(session: AsyncSession, secret: str, purpose: str, now: datetime) -> User:
    """The user of a single-use link, spending it; refused when unknown, used or expired."""
    row = await repo.token(session, passwords.digest(secret))
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at <= now:
        what = "invitation" if purpose == "invitation" else "password reset"
        raise InvalidTransition(
            f"This {what} link is not valid: it was used, it expired, or a newer one replaced it. Ask for a new one.",
            code="link_not_valid",
        )
    row.used_at = now
    user = await repo.user(session, row.user_id, for_update=True)
    assert user is not None
    return user


async def accept_invitation(
    session: AsyncSession, ctx: Context, settings: Settings, *, token: str, password: str, name: str | None
) -> User:
    """The invited person sets its password: the account is active."""
    user = await _spend(session, token, "invitation", ctx.now)
    if user.status != "invited":
        raise InvalidTransition("This account is not waiting for its invitation.", code="link_not_valid")
    await _partner_allows(session, user)
    passwords.check_strength(password, email=user.email, name=name or user.name)
    before = audit.snapshot(user, AUDITED)
    user.password_hash = passwords.hash_password(password, settings.password_hash_profile)
    user.password_changed_at = ctx.now
    user.status, user.activated_at = "active", ctx.now
    if name:
        user.name = name
    await session.flush()
    audit.record(
        session, ctx, action="user.activated", object_type="user", object_id=user.id, before=before,
        after=audit.snapshot(user, AUDITED),
    )  # fmt: skip
    return user


async def request_reset(session: AsyncSession, ctx: Context, settings: Settings, *, email: str, client: str) -> None:
    """Mail a password-reset link to an active account of that address. Answered alike whether it
    exists or not; throttled per address and per client."""
    address = _normal(email)
    window = timedelta(seconds=settings.sign_in_window_seconds)
    for log, limit in (
        (f"reset_account:{passwords.digest(address)[:32]}", settings.reset_request_limit),
        (f"reset_client:{passwords.digest(client)[:32]}", settings.reset_request_limit * 5),
    ):
        until = await limits_repo.admit(session, log, now=ctx.now, window=window, limit=limit)
        if until is not None:
            raise _throttled(until, ctx.now)
    user = await repo.by_email(session, address)
    if user is None or user.status != "active":
        return
    secret = await _token(session, user, "reset", ctx.now, timedelta(minutes=settings.reset_valid_minutes))
    mail.enqueue(
        session,
        settings,
        ctx.now,
        to=user.email,
        template=mail.Template.PASSWORD_RESET,
        values={
            "name": user.name,
            "link": _link(settings, "/password-reset", secret),
            "expires": (ctx.now + timedelta(minutes=settings.reset_valid_minutes)).strftime("%Y-%m-%d %H:%M UTC"),
        },
        user_id=user.id,
    )
    audit.record(session, ctx, action="user.password_reset_requested", object_type="user", object_id=user.id)


async def reset_password(session: AsyncSession, ctx: Context, settings: Settings, *, token: str, password: str) -> User:
    """Set a new password from a reset link: every session of the user ends."""
    user = await _spend(session, token, "reset", ctx.now)
    if user.status != "active":
        raise InvalidTransition("This account is not active.", code="link_not_valid")
    await _set_password(session, ctx, settings, user, password)
    return user


async def change_password(
    session: AsyncSession, ctx: Context, settings: Settings, user: User, *, current: str, password: str
) -> None:
    if not passwords.verify(current, user.password_hash, settings.password_hash_profile):
        raise Invalid("The current password is wrong.", code="password_wrong", field="current_password")
    await _set_password(session, ctx, settings, user, password)


async def _set_password(session: AsyncSession, ctx: Context, settings: Settings, user: User, password: str) -> None:
    passwords.check_strength(password, email=user.email, name=user.name)
    user.password_hash = passwords.hash_password(password, settings.password_hash_profile)
    user.password_changed_at = ctx.now
    await session.flush()
    await repo.revoke_sessions(session, [user.id], ctx.now, "password changed")
    audit.record(session, ctx, action="user.password_changed", object_type="user", object_id=user.id)


async def users(
    session: AsyncSession, actor: Actor, *, partner_id: uuid.UUID | None, limit: int, after: str | None
) -> list[User]:
    """A partner's users (`partner_id`), or the vendor's."""
    if partner_id is not None:
        require(actor, Permission.TEAM_READ, partner_id)
        if await partners_repo.get(session, partner_id) is None:
            raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    else:
        require(actor, Permission.VENDOR_USERS_READ)
    kind = Kind.PARTNER if partner_id is not None else Kind.VENDOR
    return list(await repo.users(session, kind=kind.value, partner_id=partner_id, limit=limit, after=after))


async def get(session: AsyncSession, actor: Actor, user_id: uuid.UUID, *, for_update: bool = False) -> User:
    """The user, if the actor may see it (its own, or of a team it reads); 404 otherwise."""
    user = await repo.user(session, user_id, for_update=for_update)
    if user is None:
        raise NotFound(f"No user {user_id}.", code="user_not_found")
    if actor.user is not None and actor.user.id == user.id:
        return user
    try:
        require(actor, Permission.TEAM_READ if user.partner_id else Permission.VENDOR_USERS_READ, user.partner_id)
    except (Forbidden, NotFound) as exc:
        raise NotFound(f"No user {user_id}.", code="user_not_found") from exc
    return user


async def update(
    session: AsyncSession,
    ctx: Context,
    actor: Actor,
    user_id: uuid.UUID,
    *,
    role: Role | None = None,
    name: str | None = None,
    time_zone: str | None = None,
) -> User:
    """Change a user's role (by who may invite to it), or its name and time zone."""
    user = await get(session, actor, user_id, for_update=True)
    before = audit.snapshot(user, AUDITED)
    if role is not None and role.value != user.role:
        if roles.KIND_OF[role].value != user.kind:
            raise Invalid(
                f"A {user.kind} user cannot take the {role.value} role.", code="role_kind_mismatch", field="role"
            )
        require(actor, Permission.TEAM_WRITE if user.partner_id else Permission.VENDOR_USERS_WRITE, user.partner_id)
        if actor.role is not None and not (
            roles.may_invite(actor.role, role) and roles.may_invite(actor.role, Role(user.role))
        ):
            raise Forbidden(f"The {roles.NAMES[actor.role]} role may not give this role.", code="role_not_allowed")
        if actor.user is not None and actor.user.id == user.id:
            raise InvalidTransition("A user does not change its own role.", code="own_role")
        user.role = role.value
    if name is not None or time_zone is not None:
        if actor.user is None or actor.user.id != user.id:
            require(actor, Permission.TEAM_WRITE if user.partner_id else Permission.VENDOR_USERS_WRITE, user.partner_id)
        if name is not None:
            user.name = name
        if time_zone is not None:
            user.time_zone = _zone(time_zone)
    await session.flush()
    after = audit.snapshot(user, AUDITED)
    if after != before:
        audit.record(
            session, ctx, action="user.updated", object_type="user", object_id=user.id, before=before, after=after
        )
    return user


async def deactivate(session: AsyncSession, ctx: Context, actor: Actor, user_id: uuid.UUID) -> User:
    """The user can no longer sign in; its sessions end. Deactivating twice changes nothing."""
    user = await get(session, actor, user_id)
    require(actor, Permission.TEAM_WRITE if user.partner_id else Permission.VENDOR_USERS_WRITE, user.partner_id)
    if actor.user is not None and actor.user.id == user.id:
        raise InvalidTransition("A user does not deactivate itself.", code="own_account")
    if user.status == "deactivated":
        return user
    before = audit.snapshot(user, AUDITED)
    user.status, user.deactivated_at = "deactivated", ctx.now
    await session.flush()
    await repo.revoke_sessions(session, [user.id], ctx.now, "user deactivated")
    await repo.expire_tokens(session, user.id, "invitation", ctx.now)
    await repo.expire_tokens(session, user.id, "reset", ctx.now)
    audit.record(
        session, ctx, action="user.deactivated", object_type="user", object_id=user.id, before=before,
        after=audit.snapshot(user, AUDITED),
    )  # fmt: skip
    return user


async def end_sessions_of_partner(session: AsyncSession, partner_id: uuid.UUID, now: datetime) -> int:
    """A terminated partner's users are signed out (and cannot sign in again)."""
    return await repo.revoke_sessions(
        session, await repo.user_ids_of_partner(session, partner_id), now, "partner terminated"
    )


async def set_notifications(session: AsyncSession, ctx: Context, user: User, choices: dict[str, bool]) -> User:
    unknown = sorted(
        set(choices) - {t.value for t in mail.Template} | set(choices) & {t.value for t in mail.ACCOUNT_MAIL}
    )
    if unknown:
        raise Invalid(
            f"Not a notification one can turn off: {', '.join(unknown)}.",
            code="notification_unknown",
            field="notifications",
        )
    before = dict(user.notifications)
    user.notifications = {**user.notifications, **choices}
    await session.flush()
    audit.record(
        session, ctx, action="user.notifications_changed", object_type="user", object_id=user.id,
        before={"notifications": before}, after={"notifications": user.notifications},
    )  # fmt: skip
    return user


# --- sessions ----------------------------------------------------------------------------------------


def _throttled(until: datetime, now: datetime) -> RateLimited:
    seconds = max(1, int((until - now).total_seconds() + 0.999))
    return RateLimited(f"Too many attempts; try again in {seconds} seconds.", retry_after=seconds, keep_writes=True)


@dataclass(frozen=True)
class SignedIn:
    row: UserSession
    user: User
    secret: str
    """The cookie's value, given once."""


async def sign_in(
    session: AsyncSession,
    ctx: Context,
    settings: Settings,
    *,
    email: str,
    password: str,
    code: str | None,
    client: str,
    user_agent: str | None,
    replaces: str | None = None,
) -> SignedIn:
    """Check the address, the password and (when on) the second factor, then open a session with a new
    id (any session the browser held is ended: no fixation)."""
    address = _normal(email)
    window = timedelta(seconds=settings.sign_in_window_seconds)
    logs = (
        (f"sign_in_account:{passwords.digest(address)[:32]}", settings.sign_in_limit),
        (f"sign_in_client:{passwords.digest(client)[:32]}", settings.sign_in_limit * 5),
    )
    for log, limit in logs:
        if (until := await limits_repo.full_until(session, log, now=ctx.now, limit=limit)) is not None:
            raise _throttled(until, ctx.now)
    user = await repo.by_email(session, address)
    right = passwords.verify(password, user.password_hash if user else None, settings.password_hash_profile)
    if user is None or not right or user.status == "invited":
        for log, limit in logs:
            await limits_repo.admit(session, log, now=ctx.now, window=window, limit=limit)
        audit.record(
            session, ctx, action="user.sign_in_failed", object_type="user",
            object_id=user.id if user is not None else f"unknown:{passwords.digest(address)[:16]}",
            after={"client": client},
        )  # fmt: skip
        raise Unauthenticated("The e-mail address or the password is wrong.", code="sign_in_failed", keep_writes=True)
    if user.status == "deactivated":
        raise Forbidden("This account is deactivated: ask your administrator.", code="user_deactivated")
    await _partner_allows(session, user)
    if user.totp_enabled_at is not None:
        await _second_factor(session, settings, user, code, ctx.now)
    if replaces is not None:
        held = await repo.session_by_hash(session, passwords.digest(replaces))
        if held is not None:
            await repo.revoke_session(session, held[0].id or 0, ctx.now, "signed in again")
    secret = passwords.new_secret()
    row = UserSession(
        token_hash=passwords.digest(secret),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=ctx.now,
        last_seen_at=ctx.now,
        expires_at=ctx.now + timedelta(hours=settings.session_absolute_hours),
        client=client[:64],
        user_agent=(user_agent or "")[:300] or None,
    )
    repo.add(session, row)
    await session.flush()
    audit.record(
        session, ctx, action="user.signed_in", object_type="user", object_id=user.id,
        after={"session": row.id, "client": client},
    )  # fmt: skip
    return SignedIn(row, user, secret)


async def _partner_allows(session: AsyncSession, user: User) -> None:
    if user.partner_id is None:
        return
    partner = await partners_repo.get(session, user.partner_id)
    if partner is not None and partner.status == PartnerStatus.TERMINATED:
        raise Forbidden(
            f"{partner.company} is no longer a partner of the program (terminated): its users cannot sign in.",
            code="partner_terminated",
        )


async def _second_factor(
    session: AsyncSession, settings: Settings, user: User, code: str | None, now: datetime
) -> None:
    if not code:
        raise Unauthenticated(
            "This account signs in with a second factor: give the code of your authenticator app, or a recovery code.",
            code="second_factor_required",
        )
    compact = code.replace(" ", "").replace("-", "")
    if compact.isdigit() and len(compact) == 6:
        step = _totp_step(settings, user, compact, now)
        if step is not None:
            user.totp_last_step = step
            await session.flush()
            return
    else:
        row = await repo.recovery_code(session, user.id, passwords.digest(compact.lower()))
        if row is not None:
            row.used_at = now
            await session.flush()
            return
    raise Unauthenticated(
        "The code is wrong, or was used already: give the current code, or an unused recovery code.",
        code="second_factor_wrong",
    )


def _totp_step(settings: Settings, user: User, code: str, now: datetime) -> int | None:
    """The time step of a valid code never accepted before (this step or the one before: a little
    clock drift); None otherwise."""
    if user.totp_secret is None:
        return None
    try:
        totp = pyotp.TOTP(sealed.open_sealed(settings, user.totp_secret))
    except InvalidToken:
        return None
    current = totp.timecode(now)
    for step in (current, current - 1):
        if user.totp_last_step is not None and step <= user.totp_last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


@dataclass(frozen=True)
class Current:
    row: UserSession
    user: User


async def current(session: AsyncSession, settings: Settings, secret: str, now: datetime) -> Current:
    """The signed-in user of a session cookie; refused when it is unknown, ended, idle too long, past
    its absolute expiry, or its user may no longer sign in."""
    found = await repo.session_by_hash(session, passwords.digest(secret))
    if found is None:
        raise Unauthenticated("Not signed in, or the session is unknown.", code="session_invalid")
    row, user = found
    if row.revoked_at is not None:
        raise Unauthenticated(f"The session ended ({row.revoked_because}); sign in again.", code="session_ended")
    if row.expires_at <= now or row.last_seen_at + timedelta(minutes=settings.session_idle_minutes) <= now:
        raise Unauthenticated("The session expired; sign in again.", code="session_expired")
    if user.status != "active":
        raise Unauthenticated("This account is deactivated.", code="session_ended")
    await _partner_allows(session, user)
    return Current(row, user)


def csrf_matches(row: UserSession, sent: str) -> bool:
    """Whether a request of the session sent its CSRF token (a header for the API, a form field for the
    pages): the one comparison, in constant time."""
    return hmac.compare_digest(sent.encode(), row.csrf_token.encode())


async def touch(session: AsyncSession, row: UserSession, now: datetime) -> None:
    """Note the session's last request (its idle expiry counts from it)."""
    await repo.touch_session(session, row.id or 0, now)


async def sign_out(session: AsyncSession, ctx: Context, row: UserSession) -> None:
    await repo.revoke_session(session, row.id or 0, ctx.now, "signed out")
    audit.record(session, ctx, action="user.signed_out", object_type="user", object_id=row.user_id)


# --- the second factor -------------------------------------------------------------------------------


async def start_second_factor(session: AsyncSession, ctx: Context, settings: Settings, user: User) -> tuple[str, str]:
    """A new TOTP secret for the user, not yet in force: the code of `confirm_second_factor` turns it on.
    Returns the secret and its `otpauth://` URI (for a QR code)."""
    if user.kind != Kind.VENDOR.value:
        raise InvalidTransition("The second factor is for the vendor's users.", code="second_factor_vendor_only")
    if user.totp_enabled_at is not None:
        raise InvalidTransition("The second factor is on already; turn it off first.", code="second_factor_on")
    secret = pyotp.random_base32()
    user.totp_secret, user.totp_last_step = sealed.seal(settings, secret), None
    await session.flush()
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


async def confirm_second_factor(
    session: AsyncSession, ctx: Context, settings: Settings, user: User, code: str
) -> list[str]:
    """Turn the second factor on with a first code; returns the recovery codes, shown only now."""
    if user.totp_secret is None or user.totp_enabled_at is not None:
        raise InvalidTransition("Start setting up the second factor first.", code="second_factor_not_started")
    step = _totp_step(settings, user, code.replace(" ", ""), ctx.now)
    if step is None:
        raise Invalid(
            "The code is wrong: give the current code of your authenticator app.",
            code="second_factor_wrong",
            field="code",
        )
    user.totp_enabled_at, user.totp_last_step = ctx.now, step
    await repo.drop_recovery_codes(session, user.id, ctx.now)
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    for made in codes:
        repo.add(
            session,
            RecoveryCode(user_id=user.id, code_hash=passwords.digest(made.replace("-", "")), created_at=ctx.now),
        )
    await session.flush()
    audit.record(session, ctx, action="user.second_factor_on", object_type="user", object_id=user.id)
    return codes


async def end_second_factor(session: AsyncSession, ctx: Context, settings: Settings, user: User, code: str) -> None:
    if settings.require_second_factor:
        raise InvalidTransition(
            "PARTNERS_REQUIRE_SECOND_FACTOR is on: the second factor stays.", code="second_factor_required_here"
        )
    if user.totp_enabled_at is None:
        return
    await _second_factor(session, settings, user, code, ctx.now)
    user.totp_secret, user.totp_enabled_at, user.totp_last_step = None, None, None
    await repo.drop_recovery_codes(session, user.id, ctx.now)
    await session.flush()
    audit.record(session, ctx, action="user.second_factor_off", object_type="user", object_id=user.id)


def needs_second_factor_setup(settings: Settings, user: User) -> bool:
    """A vendor user who must turn the second factor on before anything else."""
    return settings.require_second_factor and user.kind == Kind.VENDOR.value and user.totp_enabled_at is None


def view(user: User) -> dict[str, Any]:
    return audit.snapshot(user, AUDITED)
