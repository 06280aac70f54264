"""SQL for domain events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import DomainEvent


def _page(
    stmt: Select[DomainEvent], *, types: Sequence[str] | None, after_id: int | None, limit: int
) -> Select[DomainEvent]:
    """Oldest first from a position: an event log is read forward."""
    if types:
        stmt = stmt.where(col(DomainEvent.type).in_(list(types)))
    if after_id is not None:
        stmt = stmt.where(col(DomainEvent.id) > after_id)
    return stmt.order_by(col(DomainEvent.id)).limit(limit)


async def search(
    session: AsyncSession,
    *,
    types: Sequence[str] | None,
    partner_id: uuid.UUID | None,
    after_id: int | None,
    limit: int,
) -> Sequence[DomainEvent]:
    stmt = select(DomainEvent)
    if partner_id is not None:
        stmt = stmt.where(col(DomainEvent.partner_id) == partner_id)
    return (await session.execute(_page(stmt, types=types, after_id=after_id, limit=limit))).scalars().all()


async def for_partner(
    session: AsyncSession,
    partner_id: uuid.UUID,
    *,
    families: Sequence[str],
    program_wide: Sequence[str],
    types: Sequence[str] | None,
    after_id: int | None,
    limit: int,
) -> Sequence[DomainEvent]:
    own = (col(DomainEvent.partner_id) == partner_id) & or_(
        *(col(DomainEvent.type).startswith(family) for family in families)
    )
    stmt = select(DomainEvent).where(or_(own, col(DomainEvent.type).in_(list(program_wide))))
    return (await session.execute(_page(stmt, types=types, after_id=after_id, limit=limit))).scalars().all()


async def exists(session: AsyncSession, type: str, subject: str) -> bool:
    stmt = select(col(DomainEvent.id)).where(col(DomainEvent.type) == type, col(DomainEvent.subject) == subject)
    stmt = stmt.limit(1)
    return (await session.execute(stmt)).first() is not None


async def after(session: AsyncSession, after_id: int, *, limit: int) -> Sequence[DomainEvent]:
    """Events past a position, oldest first: what a reader of the log has not seen yet."""
    stmt = select(DomainEvent).where(col(DomainEvent.id) > after_id).order_by(col(DomainEvent.id)).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def subjects_with(session: AsyncSession, type: str, subjects: Sequence[str]) -> set[str]:
    """Which of these subjects already have an event of this type."""
    if not subjects:
        return set()
    stmt = select(col(DomainEvent.subject)).where(
        col(DomainEvent.type) == type, col(DomainEvent.subject).in_(list(subjects))
    )
    return set((await session.execute(stmt)).scalars().all())
