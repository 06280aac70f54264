"""SQL for API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import ApiKey

# Built once: every authenticated request runs it, and building a statement costs more Python than
# running it. Plain columns, not an ORM object: nothing here is changed through the session.
_BY_HASH = select(
    col(ApiKey.id),
    col(ApiKey.kind),
    col(ApiKey.partner_id),
    col(ApiKey.scopes),
    col(ApiKey.last_used_at),
    col(ApiKey.revoked_at),
).where(col(ApiKey.key_hash) == bindparam("key_hash"))


async def by_hash(session: AsyncSession, key_hash: str) -> Any:
    """What authentication needs of the key with this hash: id, kind, partner_id, scopes,
    last_used_at, revoked_at."""
    return (await session.execute(_BY_HASH, {"key_hash": key_hash})).first()


async def get(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def touch(session: AsyncSession, key_id: uuid.UUID, now: datetime, not_since: datetime) -> None:
    """Record a use, unless one was recorded after `not_since` (at most one write a minute)."""
    await session.execute(
        update(ApiKey)
        .where(
            col(ApiKey.id) == key_id,
            or_(col(ApiKey.last_used_at).is_(None), col(ApiKey.last_used_at) < not_since),
        )
        .values(last_used_at=now)
    )


async def listing(
    session: AsyncSession,
    *,
    kinds: Sequence[str],
    partner_id: uuid.UUID | None,
    include_revoked: bool,
) -> Sequence[ApiKey]:
    stmt = select(ApiKey).where(col(ApiKey.kind).in_(kinds))
    if partner_id is not None:
        stmt = stmt.where(col(ApiKey.partner_id) == partner_id)
    if not include_revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    stmt = stmt.order_by(col(ApiKey.created_at), col(ApiKey.id))
    return (await session.execute(stmt)).scalars().all()


async def count_active_admin_keys(session: AsyncSession) -> int:
    stmt = select(col(ApiKey.id)).where(col(ApiKey.kind) == "admin", col(ApiKey.revoked_at).is_(None))
    return len((await session.execute(stmt)).all())
