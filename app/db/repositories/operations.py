"""Figures about the service's own work, for its metrics."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import WebhookDelivery, WebhookEvent


async def parked_backlog(session: AsyncSession) -> int:
    """Store events parked and not yet applied."""
    count = await session.scalar(select(func.count()).where(col(WebhookEvent.status) == "parked"))
    return int(count or 0)


async def outbound_backlog(session: AsyncSession) -> int:
    """Outbound deliveries not yet settled: waiting for their moment or being sent."""
    count = await session.scalar(select(func.count()).where(col(WebhookDelivery.status).in_(("pending", "sending"))))
    return int(count or 0)
