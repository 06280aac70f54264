"""SQL for partners and their status history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Partner, PartnerStatusChange


async def get(
    session: AsyncSession, partner_id: uuid.UUID, *, for_update: bool = False
) -> Partner | None:
    stmt = select(Partner).where(Partner.id == partner_id)  # type: ignore[arg-type]
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def email_taken(session: AsyncSession, email: str) -> bool:
    stmt = select(Partner.id).where(Partner.contact_email == email)  # type: ignore[arg-type]
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
        stmt = stmt.where(Partner.status == status)  # type: ignore[arg-type]
    if country:
        stmt = stmt.where(Partner.country == country)  # type: ignore[arg-type]
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(Partner.company).like(pattern, escape="\\"),
                func.lower(Partner.contact_email).like(pattern, escape="\\"),
                func.lower(Partner.contact_name).like(pattern, escape="\\"),
                func.lower(func.coalesce(Partner.website, "")).like(
                    pattern, escape="\\"
                ),
            )
        )
    if created_from:
        stmt = stmt.where(Partner.created_at >= created_from)  # type: ignore[arg-type]
    if created_to:
        stmt = stmt.where(Partner.created_at < created_to)  # type: ignore[arg-type]
    if after:
        stmt = stmt.where(tuple_(Partner.created_at, Partner.id) < tuple_(*after))
    stmt = stmt.order_by(Partner.created_at.desc(), Partner.id.desc()).limit(limit)  # type: ignore[attr-defined]
    return (await session.execute(stmt)).scalars().all()


async def status_history(
    session: AsyncSession, partner_id: uuid.UUID
) -> Sequence[PartnerStatusChange]:
    stmt = (
        select(PartnerStatusChange)
        .where(PartnerStatusChange.partner_id == partner_id)  # type: ignore[arg-type]
        .order_by(PartnerStatusChange.effective_at, PartnerStatusChange.id)  # type: ignore[arg-type]
    )
    return (await session.execute(stmt)).scalars().all()
