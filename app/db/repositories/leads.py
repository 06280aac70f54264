"""SQL for leads and their offers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import Lead, LeadOffer, Partner, PartnerBalance


async def get(session: AsyncSession, lead_id: uuid.UUID, *, for_update: bool = False) -> Lead | None:
    stmt = select(Lead).where(col(Lead.id) == lead_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def offers(session: AsyncSession, lead_id: uuid.UUID) -> Sequence[LeadOffer]:
    stmt = select(LeadOffer).where(col(LeadOffer.lead_id) == lead_id).order_by(col(LeadOffer.sequence))
    return (await session.execute(stmt)).scalars().all()


async def offer(session: AsyncSession, offer_id: uuid.UUID, *, for_update: bool = False) -> LeadOffer | None:
    stmt = select(LeadOffer).where(col(LeadOffer.id) == offer_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def partner_offers(
    session: AsyncSession, partner_id: uuid.UUID, states: Sequence[str] | None
) -> Sequence[LeadOffer]:
    stmt = select(LeadOffer).where(col(LeadOffer.partner_id) == partner_id)
    if states:
        stmt = stmt.where(col(LeadOffer.state).in_(states))
    return (await session.execute(stmt.order_by(col(LeadOffer.offered_at).desc()))).scalars().all()


async def due_offers(session: AsyncSession, now: datetime) -> Sequence[LeadOffer]:
    stmt = (
        select(LeadOffer)
        .where(col(LeadOffer.state) == "offered", col(LeadOffer.deadline) <= now)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(stmt)).scalars().all()


_OF_INACTIVE = (
    select(LeadOffer)
    .join(Partner, col(Partner.id) == col(LeadOffer.partner_id))
    .where(col(LeadOffer.state) == "offered", col(Partner.status).in_(("suspended", "terminated")))
)


async def any_offer_of_inactive_partner(session: AsyncSession) -> bool:
    """Is an offer still open to a suspended or terminated partner?"""
    return (await session.execute(_OF_INACTIVE.with_only_columns(col(LeadOffer.id)).limit(1))).first() is not None


async def offers_of_inactive_partners(session: AsyncSession, limit: int) -> Sequence[tuple[LeadOffer, str]]:
    """Offers still open to a suspended or terminated partner, with its status; locked, skipping
    those another transaction holds."""
    stmt = (
        _OF_INACTIVE.add_columns(col(Partner.status))
        .order_by(col(LeadOffer.offered_at), col(LeadOffer.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=LeadOffer)
    )
    return [(offer, str(status)) for offer, status in (await session.execute(stmt)).all()]


async def candidates(session: AsyncSession) -> Sequence[tuple[Partner, str, int]]:
    """Active partners with their level and their open lead offers."""
    open_offers = (
        select(col(LeadOffer.partner_id), func.count().label("n"))
        .where(col(LeadOffer.state).in_(("offered", "accepted")))
        .group_by(col(LeadOffer.partner_id))
        .subquery()
    )
    stmt = (
        select(Partner, func.coalesce(PartnerBalance.level, "affiliate"), func.coalesce(open_offers.c.n, 0))
        .outerjoin(PartnerBalance, col(PartnerBalance.partner_id) == col(Partner.id))
        .outerjoin(open_offers, open_offers.c.partner_id == col(Partner.id))
        .where(col(Partner.status) == "active")
    )
    return [(r[0], str(r[1]), int(r[2])) for r in (await session.execute(stmt)).all()]
