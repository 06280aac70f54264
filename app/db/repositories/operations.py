"""Figures about the service's own work, for its metrics."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import WebhookEvent


async def parked_backlog(session: AsyncSession) -> int:
    """Store events parked and not yet applied."""
    count = await session.scalar(select(func.count()).where(col(WebhookEvent.status) == "parked"))
    return int(count or 0)
