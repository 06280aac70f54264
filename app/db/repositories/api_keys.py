"""SQL for API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import ApiKey


async def by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.key_hash == key_hash)  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def touch(
    session: AsyncSession, key_id: uuid.UUID, now: datetime, not_since: datetime
) -> None:
    """Record a use, unless one was recorded after `not_since` (at most one write a minute)."""
    await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,  # type: ignore[arg-type]
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < not_since),  # type: ignore[union-attr, operator]
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
    stmt = select(ApiKey).where(ApiKey.kind.in_(kinds))  # type: ignore[attr-defined]
    if partner_id is not None:
        stmt = stmt.where(ApiKey.partner_id == partner_id)  # type: ignore[arg-type]
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
    stmt = stmt.order_by(ApiKey.created_at, ApiKey.id)  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalars().all()


async def count_active_admin_keys(session: AsyncSession) -> int:
    stmt = select(ApiKey.id).where(ApiKey.kind == "admin", ApiKey.revoked_at.is_(None))  # type: ignore[arg-type, union-attr]
    return len((await session.execute(stmt)).all())
