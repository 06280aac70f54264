"""What the partner portal reads that the API has no use case for: the licences behind the points at
risk, the ledgers by month and by rule, and a partner's lead offers with their leads.

Reads only, of one partner's own data; the SQL is `app.db.repositories.portal`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import ledgers as ledgers_repo
from app.db.repositories import portal as repo
from app.db.tables import Lead, LeadOffer, MoneyEntry, PointsEntry
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
    return [LicenceAtRisk(*row) for row in await repo.licences_at_risk(session, partner_id, start, end, limit=limit)]


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
    points = await repo.points_since(session, partner_id, since)
    money = await repo.money_since(session, partner_id, since)
    return (
        before,
        [Dated(at, amount, None) for at, amount in points],
        [Dated(at, amount, currency) for at, amount, currency in money],
    )


async def commission_by_rule(
    session: AsyncSession, partner_id: uuid.UUID, start: datetime, end: datetime
) -> list[tuple[str, str, int]]:
    """The partner's commission effective in [start, end) by the rule that made it and currency (R21):
    (rule, currency, amount in minor units)."""
    return await repo.commission_by_rule(session, partner_id, start, end)


async def points_entries(
    session: AsyncSession, partner_id: uuid.UUID, *, rule: str | None, before_id: int | None, limit: int
) -> Sequence[PointsEntry]:
    """The partner's points entries, newest first, of one rule when given."""
    await partners.get(session, partner_id)
    return await repo.entries(session, PointsEntry, partner_id, rule=rule, before_id=before_id, limit=limit)


async def money_entries(
    session: AsyncSession, partner_id: uuid.UUID, *, rule: str | None, before_id: int | None, limit: int
) -> Sequence[MoneyEntry]:
    """The partner's money entries, newest first, of one rule when given."""
    await partners.get(session, partner_id)
    return await repo.entries(session, MoneyEntry, partner_id, rule=rule, before_id=before_id, limit=limit)


async def lead_offers(
    session: AsyncSession, partner_id: uuid.UUID, states: Sequence[str] | None = None
) -> list[tuple[LeadOffer, Lead]]:
    """The leads offered to the partner, newest offer first, each with its lead (R19)."""
    return await repo.lead_offers(session, partner_id, states)
