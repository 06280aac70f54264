"""SQL for program-wide settings and the shared rate-limit counters."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import dialect
from app.db.tables import ProgramSettings, RateLimitBucket


async def settings(session: AsyncSession, *, for_update: bool = False) -> ProgramSettings:
    row = await session.get(ProgramSettings, 1, with_for_update=for_update)
    if row is None:  # the first migration seeds it; guard against a hand-emptied table
        raise LookupError("program_settings row 1 is missing; run the migrations")
    return row


async def hit(session: AsyncSession, key: str, expires_at: datetime, now: datetime) -> int:
    """Count one hit in the bucket `key` and return the bucket's total."""
    await session.execute(delete(RateLimitBucket).where(col(RateLimitBucket.expires_at) < now))
    stmt = (
        dialect.insert(session, RateLimitBucket)
        .values(key=key, hits=1, expires_at=expires_at)
        .on_conflict_do_update(index_elements=[col(RateLimitBucket.key)], set_={"hits": col(RateLimitBucket.hits) + 1})
        .returning(col(RateLimitBucket.hits))
    )
    return int((await session.execute(stmt)).scalar_one())


async def admit(session: AsyncSession, log: str, *, now: datetime, window: timedelta, limit: int) -> datetime | None:
    """A sliding log: when fewer than `limit` hits were admitted to `log` in the last `window`, record
    this one and answer None; otherwise answer the moment the oldest leaves the window (when one more
    will be admitted). Admitted hits are rows keyed `<log>:@<moment>:<nonce>`.

    The log's own bucket row (`<log>`, upserted first) is locked until the transaction ends, so two
    requests of one client are counted one after the other (SQLite's writers are serialised anyway).
    """
    await hit(session, log, now + window, now)
    entries = f"{log}:@"
    stmt = (
        select(col(RateLimitBucket.expires_at))
        .where(col(RateLimitBucket.key).startswith(entries, autoescape=True), col(RateLimitBucket.expires_at) > now)
        .order_by(col(RateLimitBucket.expires_at))
        .limit(limit)
    )
    admitted = list((await session.execute(stmt)).scalars())
    if len(admitted) >= limit:
        return admitted[0]
    key = f"{entries}{now.isoformat()}:{secrets.token_hex(4)}"
    session.add(RateLimitBucket(key=key, hits=1, expires_at=now + window))
    await session.flush()
    return None


async def full_until(session: AsyncSession, log: str, *, now: datetime, limit: int) -> datetime | None:
    """Without recording a hit: None while fewer than `limit` hits of `log` are in their window, else
    when the oldest leaves it."""
    stmt = (
        select(col(RateLimitBucket.expires_at))
        .where(col(RateLimitBucket.key).startswith(f"{log}:@", autoescape=True), col(RateLimitBucket.expires_at) > now)
        .order_by(col(RateLimitBucket.expires_at))
        .limit(limit)
    )
    admitted = list((await session.execute(stmt)).scalars())
    return admitted[0] if len(admitted) >= limit else None


async def counts_by_prefix(session: AsyncSession, prefixes: tuple[str, ...]) -> dict[str, int]:
    """Bucket key -> hits, for the buckets whose key starts with one of `prefixes`."""
    stmt = select(col(RateLimitBucket.key), col(RateLimitBucket.hits)).where(
        or_(*(col(RateLimitBucket.key).startswith(prefix, autoescape=True) for prefix in prefixes))
    )
    return {key: int(hits) for key, hits in (await session.execute(stmt)).all()}
