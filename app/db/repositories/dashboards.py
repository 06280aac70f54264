"""SQL for the program overview: grouped counts on indexed columns and summary rows, never a
scan of the ledgers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import (
    DiscountMismatch,
    Partner,
    PartnerBalance,
    PartnerMoneyBalance,
    PartnerQuarterMoney,
    Registration,
    RegistrationRefusal,
    Statement,
    WebhookEvent,
)


def _between(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    clauses = []
    if start is not None:
        clauses.append(column >= start)
    if end is not None:
        clauses.append(column < end)
    return clauses


async def partners_by_status(session: AsyncSession, start: datetime | None, end: datetime | None) -> dict[str, int]:
    stmt = (
        select(col(Partner.status), func.count())
        .where(*_between(col(Partner.created_at), start, end))
        .group_by(col(Partner.status))
    )
    return {r[0]: int(r[1]) for r in (await session.execute(stmt)).all()}


async def active_partners_by_level(session: AsyncSession) -> dict[str, int]:
    """Active partners by level; one without a balance row yet (no entry) is an Affiliate."""
    level = func.coalesce(PartnerBalance.level, "affiliate")
    stmt = (
        select(level, func.count())
        .select_from(Partner)
        .outerjoin(PartnerBalance, col(PartnerBalance.partner_id) == col(Partner.id))
        .where(col(Partner.status) == "active")
        .group_by(literal_column("1"))
    )
    return {r[0]: int(r[1]) for r in (await session.execute(stmt)).all()}


async def points_distribution(session: AsyncSession, bounds: list[tuple[str, int, int | None]]) -> dict[str, int]:
    """Active partners by band of points, the same partners `active_partners_by_level` counts: one
    without a balance row yet has 0 points. A balance below 0 (an adjustment) is `negative`."""
    points = func.coalesce(PartnerBalance.points, 0)
    bucket = case(
        *[
            ((points >= low) & (points <= high), name) if high is not None else (points >= low, name)
            for name, low, high in bounds
        ],
        else_="negative",
    )
    stmt = (
        select(bucket, func.count())
        .select_from(Partner)
        .outerjoin(PartnerBalance, col(PartnerBalance.partner_id) == col(Partner.id))
        .where(col(Partner.status) == "active")
        .group_by(literal_column("1"))
    )
    return {r[0]: int(r[1]) for r in (await session.execute(stmt)).all()}


async def accrued(session: AsyncSession, quarters: tuple[str, str] | None) -> dict[tuple[str, str], int]:
    stmt = select(
        col(PartnerQuarterMoney.quarter), col(PartnerQuarterMoney.currency), func.sum(PartnerQuarterMoney.accrued)
    )
    if quarters:
        stmt = stmt.where(
            col(PartnerQuarterMoney.quarter) >= quarters[0], col(PartnerQuarterMoney.quarter) <= quarters[1]
        )
    stmt = stmt.group_by(col(PartnerQuarterMoney.quarter), col(PartnerQuarterMoney.currency))
    return {(r[0], r[1]): int(r[2] or 0) for r in (await session.execute(stmt)).all()}


async def statement_totals(session: AsyncSession, quarters: tuple[str, str] | None) -> dict[tuple[str, str, str], int]:
    stmt = select(
        col(Statement.quarter), col(Statement.currency), col(Statement.status), func.sum(Statement.payable_amount)
    )
    if quarters:
        stmt = stmt.where(col(Statement.quarter) >= quarters[0], col(Statement.quarter) <= quarters[1])
    stmt = stmt.group_by(col(Statement.quarter), col(Statement.currency), col(Statement.status))
    return {(r[0], r[1], r[2]): int(r[3] or 0) for r in (await session.execute(stmt)).all()}


async def registrations_by_state(
    session: AsyncSession, now: datetime, start: datetime | None, end: datetime | None
) -> dict[str, int]:
    state = case(
        ((col(Registration.state) == "live") & (col(Registration.expires_at) <= now), "expired"),
        else_=col(Registration.state),
    )
    stmt = (
        select(state, func.count())
        .where(*_between(col(Registration.registered_at), start, end))
        .group_by(literal_column("1"))
    )
    return {r[0]: int(r[1]) for r in (await session.execute(stmt)).all()}


async def refusals_by_reason(session: AsyncSession, start: datetime | None, end: datetime | None) -> dict[str, int]:
    stmt = (
        select(col(RegistrationRefusal.code), func.count())
        .where(*_between(col(RegistrationRefusal.refused_at), start, end))
        .group_by(col(RegistrationRefusal.code))
    )
    return {r[0]: int(r[1]) for r in (await session.execute(stmt)).all()}


async def parked_events(session: AsyncSession, start: datetime | None, end: datetime | None) -> dict[str, int]:
    stmt = (
        select(func.coalesce(WebhookEvent.reason_code, "unknown"), func.count())
        .where(col(WebhookEvent.status) == "parked", *_between(col(WebhookEvent.received_at), start, end))
        .group_by(literal_column("1"))
    )
    return {r[0]: int(r[1]) for r in (await session.execute(stmt)).all()}


async def mismatch_count(session: AsyncSession, start: datetime | None, end: datetime | None) -> int:
    stmt = (
        select(func.count())
        .select_from(DiscountMismatch)
        .where(*_between(col(DiscountMismatch.recorded_at), start, end))
    )
    return int((await session.execute(stmt)).scalar_one())


async def top_by_points(session: AsyncSession, limit: int) -> list[tuple[Any, str, int]]:
    stmt = (
        select(col(PartnerBalance.partner_id), col(Partner.company), col(PartnerBalance.points))
        .join(Partner, col(Partner.id) == col(PartnerBalance.partner_id))
        .order_by(col(PartnerBalance.points).desc())
        .limit(limit)
    )
    return [(r[0], r[1], int(r[2])) for r in (await session.execute(stmt)).all()]


async def top_by_commission(session: AsyncSession, limit: int) -> list[tuple[Any, str, int, str]]:
    stmt = (
        select(
            col(PartnerMoneyBalance.partner_id),
            col(Partner.company),
            col(PartnerMoneyBalance.amount),
            col(PartnerMoneyBalance.currency),
        )
        .join(Partner, col(Partner.id) == col(PartnerMoneyBalance.partner_id))
        .order_by(col(PartnerMoneyBalance.amount).desc())
        .limit(limit)
    )
    return [(r[0], r[1], int(r[2]), r[3]) for r in (await session.execute(stmt)).all()]
