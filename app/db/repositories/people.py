"""SQL for users, their single-use links, sessions and recovery codes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import RecoveryCode, User, UserSession, UserToken


async def user(session: AsyncSession, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
    stmt = select(User).where(col(User.id) == user_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(col(User.email) == email.lower())
    return (await session.execute(stmt)).scalar_one_or_none()


def add(session: AsyncSession, row: User | UserToken | UserSession | RecoveryCode) -> None:
    session.add(row)


async def users(
    session: AsyncSession, *, kind: str, partner_id: uuid.UUID | None, limit: int, after: str | None
) -> Sequence[User]:
    """A partner's users, or the vendor's, by e-mail address."""
    stmt = select(User).where(col(User.kind) == kind)
    if partner_id is not None:
        stmt = stmt.where(col(User.partner_id) == partner_id)
    if after is not None:
        stmt = stmt.where(col(User.email) > after)
    stmt = stmt.order_by(col(User.email)).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def active_users_of(session: AsyncSession, partner_ids: Sequence[uuid.UUID | None]) -> Sequence[User]:
    """The active users of these partners (None: the vendor's)."""
    partners = [p for p in partner_ids if p is not None]
    conditions: list[ColumnElement[bool]] = []
    if partners:
        conditions.append(col(User.partner_id).in_(partners))
    if None in partner_ids:
        conditions.append(col(User.kind) == "vendor")
    if not conditions:
        return []
    stmt = select(User).where(col(User.status) == "active", or_(*conditions)).order_by(col(User.email))
    return (await session.execute(stmt)).scalars().all()


async def count_of_partner(session: AsyncSession, partner_id: uuid.UUID) -> int:
    stmt = select(func.count()).select_from(User).where(col(User.partner_id) == partner_id)
    return int((await session.execute(stmt)).scalar_one())


async def token(session: AsyncSession, token_hash: str, *, for_update: bool = True) -> UserToken | None:
    stmt = select(UserToken).where(col(UserToken.token_hash) == token_hash)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def expire_tokens(session: AsyncSession, user_id: uuid.UUID, purpose: str, at: datetime) -> None:
    """Spend the user's unused links of this purpose: only the newest works."""
    await session.execute(
        update(UserToken)
        .where(col(UserToken.user_id) == user_id, col(UserToken.purpose) == purpose, col(UserToken.used_at).is_(None))
        .values(used_at=at)
        .execution_options(synchronize_session=False)
    )


async def session_by_hash(session: AsyncSession, token_hash: str) -> tuple[UserSession, User] | None:
    stmt = (
        select(UserSession, User)
        .join(User, col(User.id) == col(UserSession.user_id))
        .where(col(UserSession.token_hash) == token_hash)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row is not None else None


async def revoke_sessions(session: AsyncSession, user_ids: Sequence[uuid.UUID], at: datetime, because: str) -> int:
    if not user_ids:
        return 0
    result = await session.execute(
        update(UserSession)
        .where(col(UserSession.user_id).in_(list(user_ids)), col(UserSession.revoked_at).is_(None))
        .values(revoked_at=at, revoked_because=because)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def touch_session(session: AsyncSession, session_id: int, at: datetime) -> None:
    await session.execute(
        update(UserSession)
        .where(col(UserSession.id) == session_id)
        .values(last_seen_at=at)
        .execution_options(synchronize_session=False)
    )


async def revoke_session(session: AsyncSession, session_id: int, at: datetime, because: str) -> None:
    await session.execute(
        update(UserSession)
        .where(col(UserSession.id) == session_id, col(UserSession.revoked_at).is_(None))
        .values(revoked_at=at, revoked_because=because)
        .execution_options(synchronize_session=False)
    )


async def user_ids_of_partner(session: AsyncSession, partner_id: uuid.UUID) -> list[uuid.UUID]:
    stmt = select(col(User.id)).where(col(User.partner_id) == partner_id)
    return list((await session.execute(stmt)).scalars().all())


async def recovery_code(session: AsyncSession, user_id: uuid.UUID, code_hash: str) -> RecoveryCode | None:
    stmt = (
        select(RecoveryCode)
        .where(
            col(RecoveryCode.user_id) == user_id,
            col(RecoveryCode.code_hash) == code_hash,
            col(RecoveryCode.used_at).is_(None),
        )
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def drop_recovery_codes(session: AsyncSession, user_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        update(RecoveryCode)
        .where(col(RecoveryCode.user_id) == user_id, col(RecoveryCode.used_at).is_(None))
        .values(used_at=at)
        .execution_options(synchronize_session=False)
    )
