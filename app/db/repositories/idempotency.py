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
            claim_token=record.claim_token,
            claimed_at=record.claimed_at,
        )
        .on_conflict_do_nothing(index_elements=[col(IdempotencyRecord.actor), col(IdempotencyRecord.key)])
        .returning(col(IdempotencyRecord.key))
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def take_over(
    session: AsyncSession, actor: str, key: str, *, old_token: str | None, new_token: str, now: datetime
) -> bool:
    """Move an in-flight claim from `old_token` to `new_token`; False when it moved or finished since."""
    stmt = (
        update(IdempotencyRecord)
        .where(
            col(IdempotencyRecord.actor) == actor,
            col(IdempotencyRecord.key) == key,
            col(IdempotencyRecord.status) == "in_flight",
            _token_is(old_token),
        )
        .values(claim_token=new_token, claimed_at=now)
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def complete(
    session: AsyncSession, actor: str, key: str, token: str | None, status: int, body: dict[str, Any]
) -> bool:
    """Keep the answer, while the claim is still `token`'s; False once another request took it."""
    result = await session.execute(
        update(IdempotencyRecord)
        .where(
            col(IdempotencyRecord.actor) == actor,
            col(IdempotencyRecord.key) == key,
            col(IdempotencyRecord.status) == "in_flight",
            _token_is(token),
        )
        .values(status="done", response_status=status, response_body=body)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release(session: AsyncSession, actor: str, key: str, token: str | None) -> None:
    """Free the key after a failure, unless another request holds it now."""
    await session.execute(
        delete(IdempotencyRecord).where(
            col(IdempotencyRecord.actor) == actor,
            col(IdempotencyRecord.key) == key,
            col(IdempotencyRecord.status) == "in_flight",
            _token_is(token),
        )
    )


async def prune(session: AsyncSession, *, before: datetime) -> int:
    """Delete records created before `before` (a key is honoured for 24 hours)."""
    result = await session.execute(delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _token_is(token: str | None) -> Any:
    column = col(IdempotencyRecord.claim_token)
    return column.is_(None) if token is None else column == token
