"""What the partner portal reads that the API has no use case for: the licences behind the points at
risk, the ledgers by month and by rule, and a partner's lead offers with their leads.

Reads only, of one partner's own data. The statements are here rather than in `app/db/repositories/`
only because this module was added alongside the portal's pages; they belong in a repository module
(`app/db/repositories/portal.py`) and can move there unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import ledgers as ledgers_repo
from app.db.tables import Customer, Lead, LeadOffer, Licence, MoneyEntry, PointsEntry
from app.domain import partners


@dataclass(frozen=True)
class LicenceAtRisk:
    """An active licence whose term ends in the at-risk window, with the points it still stands for:
    the points a lapse would take away (R10)."""

    licence_id: str
    sku: str
    quantity: int
    company: str
    term_end: datetime
    points: int


async def licences_at_risk(
    session: AsyncSession, partner_id: uuid.UUID, start: datetime, end: datetime, *, limit: int = 50
) -> list[LicenceAtRisk]:
    """The partner's active licences ending in [start, end), soonest first, each with its standing points
    (counted as `status.points_at_risk` counts them: only licences still holding points)."""
    standing = func.sum(PointsEntry.points)
    stmt = (
        select(
            col(Licence.licence_id),
            col(Licence.sku),
            col(Licence.quantity),
            col(Customer.company),
            col(Licence.term_end),
            standing,
        )
        .join(PointsEntry, col(PointsEntry.licence_id) == col(Licence.licence_id))
        .join(Customer, col(Customer.id) == col(Licence.customer_id))
        .where(
            col(Licence.partner_id) == partner_id,
            col(Licence.status) == "active",
            col(Licence.term_end) >= start,
            col(Licence.term_end) < end,
        )
        .group_by(
            col(Licence.licence_id),
            col(Licence.sku),
            col(Licence.quantity),
            col(Customer.company),
            col(Licence.term_end),
        )
        .having(standing > 0)
        .order_by(col(Licence.term_end), col(Licence.licence_id))
        .limit(limit)
    )
    return [
        LicenceAtRisk(row[0], row[1], int(row[2]), row[3], cast(datetime, row[4]), int(row[5]))
        for row in (await session.execute(stmt)).all()
    ]


@dataclass(frozen=True)
class Dated:
    """One ledger entry reduced to what a chart needs."""

    effective_at: datetime
    amount: int
    currency: str | None


async def history_since(
    session: AsyncSession, partner_id: uuid.UUID, since: datetime
) -> tuple[int, list[Dated], list[Dated]]:
    """The partner's points balance just before `since`, then its points and money entries effective
    from `since` on (oldest first): what a chart of points and commission over time is drawn from."""
    await partners.get(session, partner_id)
    before = await ledgers_repo.points_before(session, partner_id, since)
    points = await session.execute(
        select(col(PointsEntry.effective_at), col(PointsEntry.points))
        .where(col(PointsEntry.partner_id) == partner_id, col(PointsEntry.effective_at) >= since)
        .order_by(col(PointsEntry.effective_at))
    )
    money = await session.execute(
        select(col(MoneyEntry.effective_at), col(MoneyEntry.amount), col(MoneyEntry.currency))
        .where(col(MoneyEntry.partner_id) == partner_id, col(MoneyEntry.effective_at) >= since)
        .order_by(col(MoneyEntry.effective_at))
    )
    return (
        before,
        [Dated(r[0], int(r[1]), None) for r in points.all()],
        [Dated(r[0], int(r[1]), r[2]) for r in money.all()],
    )


async def commission_by_rule(
    session: AsyncSession, partner_id: uuid.UUID, start: datetime, end: datetime
) -> list[tuple[str, str, int]]:
    """The partner's commission effective in [start, end) by the rule that made it and currency (R21):
    (rule, currency, amount in minor units)."""
    stmt = (
        select(col(MoneyEntry.rule), col(MoneyEntry.currency), func.sum(MoneyEntry.amount))
        .where(
            col(MoneyEntry.partner_id) == partner_id,
            col(MoneyEntry.effective_at) >= start,
            col(MoneyEntry.effective_at) < end,
        )
        .group_by(col(MoneyEntry.rule), col(MoneyEntry.currency))
        .order_by(col(MoneyEntry.rule), col(MoneyEntry.currency))
    )
    return [(r[0], r[1], int(r[2] or 0)) for r in (await session.execute(stmt)).all()]


async def points_entries(
    session: AsyncSession, partner_id: uuid.UUID, *, rule: str | None, before_id: int | None, limit: int
) -> Sequence[PointsEntry]:
    """The partner's points entries, newest first, of one rule when given."""
    await partners.get(session, partner_id)
    stmt = select(PointsEntry).where(col(PointsEntry.partner_id) == partner_id)
    if rule is not None:
        stmt = stmt.where(col(PointsEntry.rule) == rule)
    if before_id is not None:
        stmt = stmt.where(col(PointsEntry.id) < before_id)
    return (await session.execute(stmt.order_by(col(PointsEntry.id).desc()).limit(limit))).scalars().all()


async def money_entries(
    session: AsyncSession, partner_id: uuid.UUID, *, rule: str | None, before_id: int | None, limit: int
) -> Sequence[MoneyEntry]:
    """The partner's money entries, newest first, of one rule when given."""
    await partners.get(session, partner_id)
    stmt = select(MoneyEntry).where(col(MoneyEntry.partner_id) == partner_id)
    if rule is not None:
        stmt = stmt.where(col(MoneyEntry.rule) == rule)
    if before_id is not None:
        stmt = stmt.where(col(MoneyEntry.id) < before_id)
    return (await session.execute(stmt.order_by(col(MoneyEntry.id).desc()).limit(limit))).scalars().all()


async def lead_offers(
    session: AsyncSession, partner_id: uuid.UUID, states: Sequence[str] | None = None
) -> list[tuple[LeadOffer, Lead]]:
    """The leads offered to the partner, newest offer first, each with its lead (R19)."""
    stmt = (
        select(LeadOffer, Lead)
        .join(Lead, col(Lead.id) == col(LeadOffer.lead_id))
        .where(col(LeadOffer.partner_id) == partner_id, col(LeadOffer.state) != "refused")
    )
    if states:
        stmt = stmt.where(col(LeadOffer.state).in_(states))
    stmt = stmt.order_by(col(LeadOffer.offered_at).desc(), col(LeadOffer.id))
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]
