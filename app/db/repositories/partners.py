"""SQL for partners and their status history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import Partner, PartnerStatusChange


async def get(session: AsyncSession, partner_id: uuid.UUID, *, for_update: bool = False) -> Partner | None:
    stmt = select(Partner).where(col(Partner.id) == partner_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def email_taken(session: AsyncSession, email: str) -> bool:
    stmt = select(col(Partner.id)).where(col(Partner.contact_email) == email)
    return (await session.execute(stmt)).first() is not None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search(
    session: AsyncSession,
    *,
    status: str | None,
    country: str | None,
    q: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Partner]:
    """Newest first, keyset-paginated on (created_at, id)."""
    stmt = select(Partner)
    if status:
        stmt = stmt.where(col(Partner.status) == status)
    if country:
        stmt = stmt.where(col(Partner.country) == country)
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(col(Partner.company)).like(pattern, escape="\\"),
                func.lower(col(Partner.contact_email)).like(pattern, escape="\\"),
                func.lower(col(Partner.contact_name)).like(pattern, escape="\\"),
                func.lower(func.coalesce(col(Partner.website), "")).like(pattern, escape="\\"),
            )
        )
    if created_from:
        stmt = stmt.where(col(Partner.created_at) >= created_from)
    if created_to:
        stmt = stmt.where(col(Partner.created_at) < created_to)
    if after:
        stmt = stmt.where(tuple_(col(Partner.created_at), col(Partner.id)) < tuple_(*after))
    stmt = stmt.order_by(col(Partner.created_at).desc(), col(Partner.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def status_history(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[PartnerStatusChange]:
    stmt = (
        select(PartnerStatusChange)
        .where(col(PartnerStatusChange.partner_id) == partner_id)
        .order_by(col(PartnerStatusChange.effective_at), col(PartnerStatusChange.id))
    )
    return (await session.execute(stmt)).scalars().all()
