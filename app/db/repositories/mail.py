"""SQL for the mail outbox (the mail log)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import MailMessage


def add(session: AsyncSession, row: MailMessage) -> None:
    session.add(row)


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        col(MailMessage.state) == "pending",
        col(MailMessage.next_attempt_at) <= now,
        or_(col(MailMessage.claimed_until).is_(None), col(MailMessage.claimed_until) <= now),
    )


async def any_due(session: AsyncSession, now: datetime) -> bool:
    stmt = select(col(MailMessage.id)).where(_due(now)).limit(1)
    return (await session.execute(stmt)).first() is not None


async def claim(session: AsyncSession, now: datetime, *, worker: str, until: datetime, limit: int) -> list[MailMessage]:
    """Claim messages due to be sent, oldest first; another worker skips them until `until`."""
    stmt = (
        select(MailMessage)
        .where(_due(now))
        .order_by(col(MailMessage.next_attempt_at), col(MailMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list((await session.execute(stmt)).scalars().all())
    for row in rows:
        row.claimed_by, row.claimed_until = worker, until
    await session.flush()
    return rows


async def sent(session: AsyncSession, message_id: int, worker: str, at: datetime) -> None:
    await session.execute(
        update(MailMessage)
        .where(col(MailMessage.id) == message_id, col(MailMessage.claimed_by) == worker)
        .values(
            state="sent",
            sent_at=at,
            attempts=col(MailMessage.attempts) + 1,
            claimed_by=None,
            claimed_until=None,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    )


async def failed(
    session: AsyncSession, message_id: int, worker: str, *, error: str, attempts: int, retry_at: datetime | None
) -> None:
    """An attempt failed: try again at `retry_at`, or give up (`failed`) when there is none."""
    values: dict[str, object] = {
        "attempts": attempts,
        "last_error": error[:1000],
        "claimed_by": None,
        "claimed_until": None,
    }
    if retry_at is None:
        values["state"] = "failed"
    else:
        values["next_attempt_at"] = retry_at
    await session.execute(
        update(MailMessage)
        .where(col(MailMessage.id) == message_id, col(MailMessage.claimed_by) == worker)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def get(session: AsyncSession, message_id: int) -> MailMessage | None:
    return await session.get(MailMessage, message_id)


async def log(
    session: AsyncSession, limit: int, *, before: int | None, state: str | None, to: str | None
) -> Sequence[MailMessage]:
    """The mail log, newest first."""
    stmt = select(MailMessage)
    if before is not None:
        stmt = stmt.where(col(MailMessage.id) < before)
    if state is not None:
        stmt = stmt.where(col(MailMessage.state) == state)
    if to is not None:
        stmt = stmt.where(col(MailMessage.to_address) == to)
    stmt = stmt.order_by(col(MailMessage.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def count_in_state(session: AsyncSession, state: str) -> int:
    stmt = select(func.count()).select_from(MailMessage).where(col(MailMessage.state) == state)
    return int((await session.execute(stmt)).scalar_one())
