"""SQL for what the partner portal reads of one partner's own data: the licences behind the points at
risk, the ledgers by month and by rule, and the partner's lead offers with their leads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar, cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import Customer, Lead, LeadOffer, Licence, MoneyEntry, PointsEntry

Entry = TypeVar("Entry", PointsEntry, MoneyEntry)


async def licences_at_risk(
    session: AsyncSession, partner_id: uuid.UUID, start: datetime, end: datetime, *, limit: int
) -> list[tuple[str, str, int, str, datetime, int]]:
    """The partner's active licences ending in [start, end), soonest first, each with its standing points
    (counted as `ledgers.points_at_risk` counts them: only licences still holding points):
    (licence id, sku, quantity, company, term end, points)."""
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
        (row[0], row[1], int(row[2]), row[3], cast(datetime, row[4]), int(row[5]))
        for row in (await session.execute(stmt)).all()
    ]


async def points_since(session: AsyncSession, partner_id: uuid.UUID, since: datetime) -> list[tuple[datetime, int]]:
    """The partner's points entries effective from `since` on, oldest first: (effective at, points)."""
    stmt = (
        select(col(PointsEntry.effective_at), col(PointsEntry.points))
        .where(col(PointsEntry.partner_id) == partner_id, col(PointsEntry.effective_at) >= since)
        .order_by(col(PointsEntry.effective_at))
    )
    return [(r[0], int(r[1])) for r in (await session.execute(stmt)).all()]


async def money_since(session: AsyncSession, partner_id: uuid.UUID, since: datetime) -> list[tuple[datetime, int, str]]:
    """The partner's money entries effective from `since` on, oldest first: (effective at, amount, currency)."""
    stmt = (
        select(col(MoneyEntry.effective_at), col(MoneyEntry.amount), col(MoneyEntry.currency))
        .where(col(MoneyEntry.partner_id) == partner_id, col(MoneyEntry.effective_at) >= since)
        .order_by(col(MoneyEntry.effective_at))
    )
    return [(r[0], int(r[1]), r[2]) for r in (await session.execute(stmt)).all()]


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


async def entries(
    session: AsyncSession,
    ledger: type[Entry],
    partner_id: uuid.UUID,
    *,
    rule: str | None,
    before_id: int | None,
    limit: int,
) -> Sequence[Entry]:
    """The partner's entries of one ledger (`PointsEntry` or `MoneyEntry`), newest first, of one rule
    when given, keyset-paginated on id."""
    stmt = select(ledger).where(col(ledger.partner_id) == partner_id)
    if rule is not None:
        stmt = stmt.where(col(ledger.rule) == rule)
    if before_id is not None:
        stmt = stmt.where(col(ledger.id) < before_id)
    return (await session.execute(stmt.order_by(col(ledger.id).desc()).limit(limit))).scalars().all()


async def lead_offers(
    session: AsyncSession, partner_id: uuid.UUID, states: Sequence[str] | None
) -> list[tuple[LeadOffer, Lead]]:
    """The leads offered to the partner (not the offers a rule refused, which never reached it), newest
    offer first, each with its lead; of the given states only, when any."""
    stmt = (
        select(LeadOffer, Lead)
        .join(Lead, col(Lead.id) == col(LeadOffer.lead_id))
        .where(col(LeadOffer.partner_id) == partner_id, col(LeadOffer.state) != "refused")
    )
    if states:
        stmt = stmt.where(col(LeadOffer.state).in_(states))
    stmt = stmt.order_by(col(LeadOffer.offered_at).desc(), col(LeadOffer.id))
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]
