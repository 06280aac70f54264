"""SQL for the public directory and not-for-resale licences."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import String, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import NfrLicence, NfrViolation, Partner, PartnerBalance

LEVEL_RANK = {"platinum": 0, "gold": 1, "silver": 2, "affiliate": 3}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def listed(
    session: AsyncSession,
    *,
    country: str | None,
    region: str | None,
    level: str | None,
    language: str | None,
    q: str | None,
    offset: int,
    limit: int,
) -> Sequence[tuple[Partner, str]]:
    """Active, listed partners with their level: Platinum first, then Gold, Silver, Affiliate, then name."""
    level_col = func.coalesce(PartnerBalance.level, "affiliate")
    rank = case(*[(level_col == name, rank) for name, rank in LEVEL_RANK.items()], else_=9)
    stmt = (
        select(Partner, level_col)
        .outerjoin(PartnerBalance, col(PartnerBalance.partner_id) == col(Partner.id))
        .where(col(Partner.status) == "active", col(Partner.listed).is_(True))
    )
    if country:
        stmt = stmt.where(col(Partner.country) == country)
    if region:
        pattern = f"%{_escape_like(region.lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(func.coalesce(Partner.region, "")).like(pattern, escape="\\"),
                func.lower(cast(Partner.regions_served, String)).like(pattern, escape="\\"),
            )
        )
    if level:
        stmt = stmt.where(level_col == level)
    if language:  # codes are two validated letters: a match on the JSON text is exact enough
        stmt = stmt.where(cast(Partner.languages, String).like(f'%"{language}"%'))
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(Partner.company).like(pattern, escape="\\"),
                func.lower(func.coalesce(Partner.description, "")).like(pattern, escape="\\"),
                func.lower(cast(Partner.services, String)).like(pattern, escape="\\"),
            )
        )
    stmt = stmt.order_by(rank, func.lower(Partner.company), col(Partner.id)).offset(offset).limit(limit)
    return [(row[0], str(row[1])) for row in (await session.execute(stmt)).all()]


async def nfr_licences(session: AsyncSession, partner_id: uuid.UUID | None) -> Sequence[NfrLicence]:
    stmt = select(NfrLicence)
    if partner_id is not None:
        stmt = stmt.where(col(NfrLicence.partner_id) == partner_id)
    return (await session.execute(stmt.order_by(col(NfrLicence.issued_at), col(NfrLicence.sku)))).scalars().all()


async def nfr_by_licence_ids(session: AsyncSession, licence_ids: Sequence[str]) -> Sequence[NfrLicence]:
    if not licence_ids:
        return []
    stmt = select(NfrLicence).where(col(NfrLicence.licence_id).in_(set(licence_ids)))
    return (await session.execute(stmt)).scalars().all()


async def nfr(session: AsyncSession, nfr_id: uuid.UUID) -> NfrLicence | None:
    return await session.get(NfrLicence, nfr_id)


def add_violation(session: AsyncSession, violation: NfrViolation) -> None:
    session.add(violation)


async def violations(session: AsyncSession, limit: int) -> Sequence[NfrViolation]:
    stmt = select(NfrViolation).order_by(col(NfrViolation.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()
