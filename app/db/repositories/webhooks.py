"""SQL for stored webhook events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import dialect
from app.db.tables import Licence, RejectedWebhookEvent, WebhookEvent

LICENCE_PREFIX = "licence:"


async def claim(session: AsyncSession, event: WebhookEvent) -> WebhookEvent | None:
    """Insert the event unless its webhook id is known; None when it is (a redelivery).

    A concurrent delivery of the same id waits here for the first one to commit.
    """
    values = {
        "webhook_id": event.webhook_id,
        "event_type": event.event_type,
        "subject": event.subject,
        "body": event.body,
        "received_at": event.received_at,
        "status": event.status,
        "attempts": 1,
    }
    # RETURNING the entity: the new row comes back as a session object in the same round trip.
    stmt = (
        dialect.insert(session, WebhookEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[col(WebhookEvent.webhook_id)])
        .returning(WebhookEvent)
    )
    row: WebhookEvent | None = (await session.scalars(stmt)).one_or_none()
    return row


async def get(session: AsyncSession, event_id: int, *, for_update: bool = False) -> WebhookEvent | None:
    stmt = select(WebhookEvent).where(col(WebhookEvent.id) == event_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()


async def by_webhook_id(session: AsyncSession, webhook_id: str) -> WebhookEvent | None:
    stmt = select(WebhookEvent).where(col(WebhookEvent.webhook_id) == webhook_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def waiting_for(session: AsyncSession, subject: str) -> Sequence[WebhookEvent]:
    stmt = (
        select(WebhookEvent)
        .where(col(WebhookEvent.waiting_for) == subject, col(WebhookEvent.status) == "parked")
        .order_by(col(WebhookEvent.id))
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()


async def due_lapses(session: AsyncSession, now: datetime, limit: int) -> Sequence[WebhookEvent]:
    """Lapses parked as not due (R10) whose licence's term has ended by `now`, oldest first, skipping
    those another worker holds (the grace period is checked when each is applied)."""
    stmt = (
        select(WebhookEvent)
        .join(
            Licence,
            col(Licence.licence_id) == func.substr(col(WebhookEvent.waiting_for), len(LICENCE_PREFIX) + 1),
        )
        .where(
            col(WebhookEvent.status) == "parked",
            col(WebhookEvent.reason_code) == "lapse_not_due",
            col(WebhookEvent.waiting_for).startswith(LICENCE_PREFIX),
            or_(col(Licence.term_end).is_(None), col(Licence.term_end) <= now),
        )
        .order_by(col(WebhookEvent.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookEvent)
    )
    return (await session.execute(stmt)).scalars().all()


async def search(
    session: AsyncSession, *, status: str | None, reason_code: str | None, before_id: int | None, limit: int
) -> Sequence[WebhookEvent]:
    stmt = select(WebhookEvent)
    if status:
        stmt = stmt.where(col(WebhookEvent.status) == status)
    if reason_code:
        stmt = stmt.where(col(WebhookEvent.reason_code) == reason_code)
    if before_id is not None:
        stmt = stmt.where(col(WebhookEvent.id) < before_id)
    stmt = stmt.order_by(col(WebhookEvent.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


def add_rejected(session: AsyncSession, row: RejectedWebhookEvent) -> None:
    session.add(row)


async def rejected(session: AsyncSession, *, limit: int) -> Sequence[RejectedWebhookEvent]:
    stmt = select(RejectedWebhookEvent).order_by(col(RejectedWebhookEvent.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()
