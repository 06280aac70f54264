"""SQL for payee details and the self-billing agreement's versions and acceptances."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories.dialect import chunks
from app.db.tables import PayeeDetails, SelfBillingAcceptance, SelfBillingVersion


async def details_at(session: AsyncSession, partner_id: uuid.UUID, at: datetime | None = None) -> PayeeDetails | None:
    """The partner's payee details in force at `at` (default: the newest)."""
    stmt = select(PayeeDetails).where(col(PayeeDetails.partner_id) == partner_id)
    if at is not None:
        stmt = stmt.where(col(PayeeDetails.recorded_at) <= at)
    stmt = stmt.order_by(col(PayeeDetails.recorded_at).desc(), col(PayeeDetails.id).desc()).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def details_of(
    session: AsyncSession, partner_ids: Sequence[uuid.UUID], at: datetime | None = None
) -> dict[uuid.UUID, PayeeDetails]:
    """`details_at` for many partners: one statement per few thousand partners."""
    found: dict[uuid.UUID, PayeeDetails] = {}
    for part in chunks(partner_ids):
        newest = func.row_number().over(
            partition_by=col(PayeeDetails.partner_id),
            order_by=(col(PayeeDetails.recorded_at).desc(), col(PayeeDetails.id).desc()),
        )
        inner = select(col(PayeeDetails.id), newest.label("n")).where(col(PayeeDetails.partner_id).in_(part))
        if at is not None:
            inner = inner.where(col(PayeeDetails.recorded_at) <= at)
        ranked = inner.subquery()
        stmt = select(PayeeDetails).join(ranked, ranked.c.id == col(PayeeDetails.id)).where(ranked.c.n == 1)
        found |= {row.partner_id: row for row in (await session.execute(stmt)).scalars().all()}
    return found


def add_details(session: AsyncSession, row: PayeeDetails) -> None:
    session.add(row)


async def all_versions(session: AsyncSession) -> Sequence[SelfBillingVersion]:
    stmt = select(SelfBillingVersion).order_by(col(SelfBillingVersion.published_at), col(SelfBillingVersion.id))
    return (await session.execute(stmt)).scalars().all()


async def current_version(session: AsyncSession, at: datetime) -> SelfBillingVersion | None:
    """The newest version published at or before `at`."""
    stmt = (
        select(SelfBillingVersion)
        .where(col(SelfBillingVersion.published_at) <= at)
        .order_by(col(SelfBillingVersion.published_at).desc(), col(SelfBillingVersion.id).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def version_named(session: AsyncSession, version: str) -> SelfBillingVersion | None:
    stmt = select(SelfBillingVersion).where(col(SelfBillingVersion.version) == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def acceptances(
    session: AsyncSession, partner_id: uuid.UUID, at: datetime | None = None
) -> Sequence[tuple[SelfBillingAcceptance, str]]:
    """The partner's acceptances (made at or before `at`, when given) with the version each names,
    oldest first."""
    stmt = (
        select(SelfBillingAcceptance, col(SelfBillingVersion.version))
        .join(SelfBillingVersion, col(SelfBillingVersion.id) == col(SelfBillingAcceptance.version_id))
        .where(col(SelfBillingAcceptance.partner_id) == partner_id)
    )
    if at is not None:
        stmt = stmt.where(col(SelfBillingAcceptance.accepted_at) <= at)
    stmt = stmt.order_by(col(SelfBillingAcceptance.accepted_at), col(SelfBillingAcceptance.id))
    return [(row, name) for row, name in (await session.execute(stmt)).all()]


async def accepted_versions(
    session: AsyncSession, partner_ids: Sequence[uuid.UUID], at: datetime
) -> dict[uuid.UUID, set[str]]:
    """The versions each partner had accepted by `at`."""
    found: dict[uuid.UUID, set[str]] = {}
    for part in chunks(partner_ids):
        stmt = (
            select(col(SelfBillingAcceptance.partner_id), col(SelfBillingVersion.version))
            .join(SelfBillingVersion, col(SelfBillingVersion.id) == col(SelfBillingAcceptance.version_id))
            .where(col(SelfBillingAcceptance.partner_id).in_(part), col(SelfBillingAcceptance.accepted_at) <= at)
        )
        for partner_id, version in (await session.execute(stmt)).all():
            found.setdefault(partner_id, set()).add(version)
    return found


async def acceptance(session: AsyncSession, partner_id: uuid.UUID, version_id: int) -> SelfBillingAcceptance | None:
    stmt = select(SelfBillingAcceptance).where(
        col(SelfBillingAcceptance.partner_id) == partner_id,
        col(SelfBillingAcceptance.version_id) == version_id,
    )
    return (await session.execute(stmt)).scalar_one_or_none()
