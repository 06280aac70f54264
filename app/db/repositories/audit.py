"""SQL for the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
        (AuditEvent.actor, actor),
        (AuditEvent.action, action),
        (AuditEvent.object_type, object_type),
        (AuditEvent.object_id, object_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= since)  # type: ignore[arg-type]
    if until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < until)  # type: ignore[arg-type]
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)  # type: ignore[arg-type, operator]
    stmt = stmt.order_by(AuditEvent.id.desc()).limit(limit)  # type: ignore[union-attr]
    return (await session.execute(stmt)).scalars().all()
