"""SQL for the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import AuditEvent


def add(session: AsyncSession, event: AuditEvent) -> None:
    session.add(event)


async def search(
    session: AsyncSession,
    *,
    actor: str | None,
    action: str | None,
    object_type: str | None,
    object_id: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> Sequence[AuditEvent]:
    """Newest first, keyset-paginated on id."""
    stmt = select(AuditEvent)
    for column, value in (
        (col(AuditEvent.actor), actor),
        (col(AuditEvent.action), action),
        (col(AuditEvent.object_type), object_type),
        (col(AuditEvent.object_id), object_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(col(AuditEvent.occurred_at) >= since)
    if until is not None:
        stmt = stmt.where(col(AuditEvent.occurred_at) < until)
    if before_id is not None:
        stmt = stmt.where(col(AuditEvent.id) < before_id)
    stmt = stmt.order_by(col(AuditEvent.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()
