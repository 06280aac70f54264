"""SQL for the orders an admin should review (R12, R17, R22)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import OrderFlag


def add(session: AsyncSession, flag: OrderFlag) -> None:
    session.add(flag)


async def get(session: AsyncSession, flag_id: int, *, for_update: bool = False) -> OrderFlag | None:
    stmt = select(OrderFlag).where(col(OrderFlag.id) == flag_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def search(
    session: AsyncSession, *, kind: str | None, resolved: bool | None, before_id: int | None, limit: int
) -> Sequence[OrderFlag]:
    """Newest first."""
    stmt = select(OrderFlag)
    if kind is not None:
        stmt = stmt.where(col(OrderFlag.kind) == kind)
    if resolved is not None:
        stmt = stmt.where(col(OrderFlag.resolved_at).is_not(None) if resolved else col(OrderFlag.resolved_at).is_(None))
    if before_id is not None:
        stmt = stmt.where(col(OrderFlag.id) < before_id)
    stmt = stmt.order_by(col(OrderFlag.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def open_by_kind(session: AsyncSession, start: datetime | None, end: datetime | None) -> dict[str, int]:
    """Unresolved flags per kind, recorded in [start, end)."""
    stmt = select(col(OrderFlag.kind), func.count()).where(col(OrderFlag.resolved_at).is_(None))
    if start is not None:
        stmt = stmt.where(col(OrderFlag.recorded_at) >= start)
    if end is not None:
        stmt = stmt.where(col(OrderFlag.recorded_at) < end)
    stmt = stmt.group_by(col(OrderFlag.kind))
    return {r[0]: int(r[1]) for r in (await session.execute(stmt)).all()}
