"""SQL for API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Uuid, bindparam, column, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import ApiKey
from app.db.types import UTCDateTime

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


# Postgres: the lookup and the once-a-minute record of use in one statement (one round trip). The
# UPDATE re-checks `last_used_at` on the row it locks, so concurrent requests write it once.
_USE_PG = (
    text(
        "WITH k AS (SELECT id, kind, partner_id, scopes, last_used_at, revoked_at FROM api_keys "
        "WHERE key_hash = :key_hash), "
        "t AS (UPDATE api_keys SET last_used_at = :now FROM k WHERE api_keys.id = k.id "
        "AND api_keys.revoked_at IS NULL "
        "AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < :not_since) RETURNING api_keys.id) "
        "SELECT k.id, k.kind, k.partner_id, k.scopes, k.last_used_at, k.revoked_at, "
        "(SELECT count(*) FROM t) AS touched FROM k"
    )
    .bindparams(bindparam("now", type_=UTCDateTime()), bindparam("not_since", type_=UTCDateTime()))
    .columns(
        column("id", Uuid()),
        column("kind", String()),
        column("partner_id", Uuid()),
        column("scopes", JSON()),
        column("last_used_at", UTCDateTime()),
        column("revoked_at", UTCDateTime()),
        column("touched", Integer()),
    )
)


async def use(session: AsyncSession, key_hash: str, now: datetime, not_since: datetime) -> Any:
    """The key with this hash (id, kind, partner_id, scopes, last_used_at, revoked_at), its use
    recorded unless one was recorded after `not_since` or it is revoked; None when unknown."""
    if session.get_bind().dialect.name == "postgresql":
        params = {"key_hash": key_hash, "now": now, "not_since": not_since}
        return (await session.execute(_USE_PG, params)).first()
    key = await by_hash(session, key_hash)
    if key is not None and key.revoked_at is None and (key.last_used_at is None or key.last_used_at < not_since):
        await touch(session, key.id, now, not_since)
    return key


async def by_hash(session: AsyncSession, key_hash: str) -> Any:
    """What authentication needs of the key with this hash: id, kind, partner_id, scopes,
    last_used_at, revoked_at."""
    return (await session.execute(_BY_HASH, {"key_hash": key_hash})).first()


_ACTIVE = select(
    col(ApiKey.key_hash),
    col(ApiKey.id),
    col(ApiKey.kind),
    col(ApiKey.partner_id),
    col(ApiKey.scopes),
    col(ApiKey.last_used_at),
).where(col(ApiKey.revoked_at).is_(None))


async def active(session: AsyncSession, *, limit: int) -> Sequence[Any]:
    """Up to `limit` keys that are not revoked: key_hash, id, kind, partner_id, scopes, last_used_at."""
    return (await session.execute(_ACTIVE.limit(limit))).all()


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
