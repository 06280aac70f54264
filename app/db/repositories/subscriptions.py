"""SQL for outbound webhooks: subscriptions, deliveries, attempts and the fan-out's cursor."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import dialect
from app.db.tables import DomainEvent, EventCursor, WebhookAttempt, WebhookDelivery, WebhookSubscription


async def newest_event_id(session: AsyncSession) -> int:
    return int((await session.execute(select(func.max(col(DomainEvent.id))))).scalar_one_or_none() or 0)


async def get(
    session: AsyncSession, subscription_id: uuid.UUID, *, for_update: bool = False
) -> WebhookSubscription | None:
    stmt = select(WebhookSubscription).where(col(WebhookSubscription.id) == subscription_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def search(
    session: AsyncSession,
    *,
    owner: str | None,
    partner_id: uuid.UUID | None,
    after_id: uuid.UUID | None,
    limit: int,
) -> Sequence[WebhookSubscription]:
    stmt = select(WebhookSubscription)
    if owner is not None:
        stmt = stmt.where(col(WebhookSubscription.owner) == owner)
    if partner_id is not None:
        stmt = stmt.where(col(WebhookSubscription.partner_id) == partner_id)
    if after_id is not None:
        stmt = stmt.where(col(WebhookSubscription.id) > after_id)
    stmt = stmt.order_by(col(WebhookSubscription.id)).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def enabled(session: AsyncSession) -> Sequence[WebhookSubscription]:
    stmt = select(WebhookSubscription).where(col(WebhookSubscription.enabled).is_(True))
    return (await session.execute(stmt)).scalars().all()


async def remove(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    """A subscription goes with its deliveries and their attempts."""
    deliveries = select(col(WebhookDelivery.id)).where(col(WebhookDelivery.subscription_id) == subscription_id)
    await session.execute(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(deliveries)))
    await session.execute(delete(WebhookDelivery).where(col(WebhookDelivery.subscription_id) == subscription_id))
    await session.execute(delete(WebhookSubscription).where(col(WebhookSubscription.id) == subscription_id))


# --- the fan-out ---------------------------------------------------------------------------------


async def cursor(session: AsyncSession, name: str) -> int:
    await session.execute(
        dialect.insert(session, EventCursor)
        .values(name=name, position=0)
        .on_conflict_do_nothing(index_elements=[col(EventCursor.name)])
    )
    stmt = select(col(EventCursor.position)).where(col(EventCursor.name) == name)
    return int((await session.execute(stmt)).scalar_one())


async def read_cursor(session: AsyncSession, name: str) -> int:
    stmt = select(col(EventCursor.position)).where(col(EventCursor.name) == name)
    return int((await session.execute(stmt)).scalar_one_or_none() or 0)


async def fan_out_start(session: AsyncSession) -> int | None:
    """Where the fan-out resumes (its cursor, or the oldest enabled subscription's start if later);
    None without an enabled subscription."""
    stmt = select(func.min(col(WebhookSubscription.after_event_id))).where(col(WebhookSubscription.enabled).is_(True))
    oldest = (await session.execute(stmt)).scalar_one_or_none()
    if oldest is None:
        return None
    return max(int(oldest), await read_cursor(session, "webhook_fanout"))


async def move_cursor(session: AsyncSession, name: str, position: int) -> None:
    await session.execute(
        update(EventCursor)
        .where(col(EventCursor.name) == name, col(EventCursor.position) < position)
        .values(position=position)
        .execution_options(synchronize_session=False)
    )


async def add_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert deliveries; one that exists already (same subscription and event) is left as it is.
    Returns how many are new."""
    added = 0
    for start in range(0, len(rows), 500):  # within the databases' limits on bound parameters
        stmt = (
            dialect.insert(session, WebhookDelivery)
            .values(list(rows[start : start + 500]))
            .on_conflict_do_nothing(
                index_elements=[col(WebhookDelivery.subscription_id), col(WebhookDelivery.event_id)]
            )
            .returning(col(WebhookDelivery.id))
        )
        added += len((await session.execute(stmt)).all())
    return added


# --- deliveries ----------------------------------------------------------------------------------


def _due(now: datetime) -> Any:
    live = select(col(WebhookSubscription.id)).where(col(WebhookSubscription.enabled).is_(True))
    return col(WebhookDelivery.subscription_id).in_(live) & or_(
        (col(WebhookDelivery.status) == "pending") & (col(WebhookDelivery.next_attempt_at) <= now),
        (col(WebhookDelivery.status) == "sending") & (col(WebhookDelivery.claimed_until) < now),
    )


async def any_due(session: AsyncSession, now: datetime) -> bool:
    stmt = select(col(WebhookDelivery.id)).where(_due(now)).limit(1)
    return (await session.execute(stmt)).first() is not None


async def claim(
    session: AsyncSession, now: datetime, *, worker: str, until: datetime, limit: int
) -> Sequence[WebhookDelivery]:
    """Claim due deliveries of enabled subscriptions: pending ones whose time has come, and those a
    worker claimed and never finished (its claim expired: it died mid-call). Skips rows another
    worker is claiming at this moment (Postgres); SQLite's writer lock serialises the claims."""
    due = (
        select(col(WebhookDelivery.id))
        .where(_due(now))
        .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(due)).scalars().all())
    if not ids:
        return []
    await session.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id).in_(ids))
        .values(status="sending", claimed_by=worker, claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    stmt = (
        select(WebhookDelivery)
        .where(col(WebhookDelivery.id).in_(ids))
        .order_by(col(WebhookDelivery.id))
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalars().all()


async def delivery(session: AsyncSession, delivery_id: int, *, for_update: bool = False) -> WebhookDelivery | None:
    stmt = select(WebhookDelivery).where(col(WebhookDelivery.id) == delivery_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalars().first()


def add_attempt(session: AsyncSession, attempt: WebhookAttempt) -> None:
    session.add(attempt)


async def deliveries(
    session: AsyncSession, subscription_id: uuid.UUID, *, before_id: int | None, limit: int
) -> Sequence[WebhookDelivery]:
    """A subscription's deliveries, newest first."""
    stmt = select(WebhookDelivery).where(col(WebhookDelivery.subscription_id) == subscription_id)
    if before_id is not None:
        stmt = stmt.where(col(WebhookDelivery.id) < before_id)
    stmt = stmt.order_by(col(WebhookDelivery.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def attempts(session: AsyncSession, delivery_ids: Sequence[int]) -> Sequence[WebhookAttempt]:
    if not delivery_ids:
        return []
    stmt = (
        select(WebhookAttempt)
        .where(col(WebhookAttempt.delivery_id).in_(list(delivery_ids)))
        .order_by(col(WebhookAttempt.id))
    )
    return (await session.execute(stmt)).scalars().all()
