"""Writing and reading the append-only audit log."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import audit as repo
from app.db.tables import AuditEvent
from app.domain.context import Context


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The named fields of `obj`, as JSON-safe values, for an audit row."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def record(
    session: AsyncSession,
    ctx: Context,
    *,
    action: str,
    object_type: str,
    object_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Append one audit row in the caller's transaction."""
    repo.add(
        session,
        AuditEvent(
            occurred_at=ctx.now,
            actor=ctx.actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
            request_id=ctx.request_id,
        ),
    )


async def search(
    session: AsyncSession,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[AuditEvent]:
    """Audit rows matching every given filter, newest first."""
    return await repo.search(
        session,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
