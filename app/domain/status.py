"""What partners (and admins) read: status, ledgers with their explanations, customers (R03, R21)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import customers as customers_repo
from app.db.repositories import ledgers as repo
from app.db.tables import LevelChange, MoneyEntry, PointsEntry, Relationship
from app.domain import partners, terms
from app.domain.errors import NotFound
from app.domain.rules.terms import Level


@dataclass(frozen=True)
class Status:
    partner_id: uuid.UUID
    level: Level
    active_points: int
    next_level: Level | None
    points_to_next_level: int | None
    discount_rate_bp: int
    lifetime_commission_rate_bp: int
    referral_rate_bp: int
    points_at_risk: int
    at_risk_until: datetime
    commission_balances: dict[str, int]
    terms_version: int


async def status(session: AsyncSession, partner_id: uuid.UUID, now: datetime, as_of: datetime | None = None) -> Status:
    """The partner's level, points, rates, points at risk and commission balance per currency;
    with `as_of`, as they stood then, from the entries effective up to that moment."""
    if as_of is not None:
        now = as_of
    in_force = await terms.in_force(session, now)
    until = at_risk_until(in_force, now)
    if as_of is None:
        standing = await repo.standing(session, partner_id, now, until)
        if standing is None:
            raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    else:
        await partners.get(session, partner_id)
        just_after = as_of + timedelta(microseconds=1)
        standing = repo.Standing(
            points=await repo.points_before(session, partner_id, just_after),
            money=await repo.money_before(session, partner_id, just_after),
            points_at_risk=await repo.points_at_risk(session, partner_id, now, until),
        )
    return of_standing(partner_id, in_force, standing, until)


def at_risk_until(in_force: terms.TermsVersion, now: datetime) -> datetime:
    """The end of the window whose licence ends put points at risk, from `now` (R03)."""
    return now + timedelta(days=in_force.terms.points_at_risk_days)


def of_standing(
    partner_id: uuid.UUID, in_force: terms.TermsVersion, standing: repo.Standing, until: datetime
) -> Status:
    """The status that a partner's standing (its points, balances and points at risk until `until`)
    gives under the terms in force: the level and rates its points reach, what the next level needs."""
    program = in_force.terms
    points = standing.points
    level = program.level_for(points)
    upcoming = program.next_level(points)
    return Status(
        partner_id=partner_id,
        level=level,
        active_points=points,
        next_level=upcoming.level if upcoming else None,
        points_to_next_level=upcoming.min_points - points if upcoming else None,
        discount_rate_bp=program.resale_rate_bp(level),
        lifetime_commission_rate_bp=program.rate_bp(level),
        referral_rate_bp=program.referral_rate_bp,
        points_at_risk=standing.points_at_risk,
        at_risk_until=until,
        commission_balances=standing.money,
        terms_version=in_force.version,
    )


async def points_entries(
    session: AsyncSession, partner_id: uuid.UUID, *, before_id: int | None, limit: int
) -> Sequence[PointsEntry]:
    await partners.get(session, partner_id)
    return await repo.points_entries(session, partner_id, before_id=before_id, limit=limit)


async def money_entries(
    session: AsyncSession, partner_id: uuid.UUID, *, before_id: int | None, limit: int
) -> Sequence[MoneyEntry]:
    await partners.get(session, partner_id)
    return await repo.money_entries(session, partner_id, before_id=before_id, limit=limit)


async def level_history(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[LevelChange]:
    await partners.get(session, partner_id)
    return await repo.level_history(session, partner_id)


async def relationships(session: AsyncSession, partner_id: uuid.UUID) -> list[tuple[Relationship, str]]:
    await partners.get(session, partner_id)
    rows = await customers_repo.partner_relationships(session, partner_id)
    names = await customers_repo.companies(session, [r.customer_id for r in rows])
    return [(r, names.get(r.customer_id, "")) for r in rows]
