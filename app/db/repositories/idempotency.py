"""SQL for Idempotency-Key records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import dialect
from app.db.tables import IdempotencyRecord


async def get(session: AsyncSession, actor: str, key: str) -> IdempotencyRecord | None:
    stmt = select(IdempotencyRecord).where(col(IdempotencyRecord.actor) == actor, col(IdempotencyRecord.key) == key)
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()


async def claim(session: AsyncSession, record: IdempotencyRecord) -> bool:
    stmt = (
        dialect.insert(session, IdempotencyRecord)
        .values(
            actor=record.actor,
            key=record.key,
            method=record.method,
            path=record.path,
            request_hash=record.request_hash,
            status="in_flight",
            created_at=record.created_at,
        )
        .on_conflict_do_nothing(index_elements=[col(IdempotencyRecord.actor), col(IdempotencyRecord.key)])
        .returning(col(IdempotencyRecord.key))
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def complete(session: AsyncSession, actor: str, key: str, status: int, body: dict[str, Any]) -> None:
    await session.execute(
        update(IdempotencyRecord)
        .where(col(IdempotencyRecord.actor) == actor, col(IdempotencyRecord.key) == key)
        .values(status="done", response_status=status, response_body=body)
    )


async def release(session: AsyncSession, actor: str, key: str) -> None:
    await session.execute(
        delete(IdempotencyRecord).where(
            col(IdempotencyRecord.actor) == actor,
            col(IdempotencyRecord.key) == key,
            col(IdempotencyRecord.status) == "in_flight",
        )
    )


async def prune(session: AsyncSession, *, before: datetime) -> int:
    """Delete records created before `before` (a key is honoured for 24 hours)."""
    result = await session.execute(delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
