"""SQL for the public directory and not-for-resale licences."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import String, bindparam, case, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import DirectoryReview, NfrLicence, NfrViolation, Partner

LEVEL_RANK = {"platinum": 0, "gold": 1, "silver": 2, "affiliate": 3}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Listing:
    """A partner's public directory fields."""

    id: uuid.UUID
    name: str
    """The partner's company name."""
    level: str
    country: str
    region: str | None
    website: str | None
    languages: list[str]
    services: list[str]
    regions_served: list[str]
    description: str | None


LEVEL_BY_RANK = {rank: name for name, rank in LEVEL_RANK.items()}


async def set_level_rank(session: AsyncSession, partner_id: uuid.UUID, level: str) -> None:
    """Keep the directory's order in step with a level change (same transaction)."""
    await session.execute(
        update(Partner).where(col(Partner.id) == partner_id).values(level_rank=LEVEL_RANK.get(level, 3))
    )


# A partner registered by a build before the published name and website has them null: its
# registered ones are shown (the expression matches the index's).
_SHOWN_COMPANY = func.coalesce(Partner.published_company, Partner.company)
_SHOWN_WEBSITE = case(
    (col(Partner.published_company).is_(None), col(Partner.website)), else_=col(Partner.published_website)
)


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
) -> list[Listing]:
    """Active, listed partners: Platinum first, then Gold, Silver, Affiliate, then name, with the name
    and website last approved (R18). Reads `ix_partners_directory` in order (a partial index of exactly
    the listed partners)."""
    stmt = select(
        col(Partner.id),
        _SHOWN_COMPANY,
        col(Partner.level_rank),
        col(Partner.country),
        col(Partner.region),
        _SHOWN_WEBSITE,
        col(Partner.languages),
        col(Partner.published_services),
        col(Partner.regions_served),
        col(Partner.published_description),
    ).where(
        col(Partner.status) == "active",
        col(Partner.listed) == True,  # noqa: E712 - SQL, matches the index
        col(Partner.hidden_at).is_(None),  # R18: hidden by an admin
    )
    if country:
        stmt = stmt.where(col(Partner.country) == country)
    if region:
        stmt = stmt.where(col(Partner.region_text).like(f"%{_escape_like(region.lower())}%", escape="\\"))
    if level:
        stmt = stmt.where(col(Partner.level_rank) == LEVEL_RANK.get(level, 9))
    if language:  # codes are two validated letters: a match on the JSON text is exact enough
        stmt = stmt.where(cast(Partner.languages, String).like(f'%"{language}"%'))
    if q:  # one column, trigram-indexed on Postgres (see POSTGRES_ONLY_INDEXES)
        stmt = stmt.where(col(Partner.search_text).like(f"%{_escape_like(q.lower())}%", escape="\\"))
    stmt = (
        stmt.order_by(col(Partner.level_rank), func.lower(_SHOWN_COMPANY), col(Partner.id)).offset(offset).limit(limit)
    )
    return [
        Listing(
            id=r[0],
            name=r[1],
            level=LEVEL_BY_RANK.get(r[2], "affiliate"),
            country=r[3],
            region=r[4],
            website=r[5],
            languages=list(r[6] or []),
            services=list(r[7] or []),
            regions_served=list(r[8] or []),
            description=r[9],
        )
        for r in (await session.execute(stmt)).all()
    ]


async def nfr_licences(session: AsyncSession, partner_id: uuid.UUID | None) -> Sequence[NfrLicence]:
    stmt = select(NfrLicence)
    if partner_id is not None:
        stmt = stmt.where(col(NfrLicence.partner_id) == partner_id)
    return (await session.execute(stmt.order_by(col(NfrLicence.issued_at), col(NfrLicence.sku)))).scalars().all()


async def nfr_by_licence_ids(session: AsyncSession, licence_ids: Sequence[str]) -> Sequence[NfrLicence]:
    if not licence_ids:
        return []
    return (await session.execute(_NFR_BY_LICENCE_IDS, {"ids": sorted(set(licence_ids))})).scalars().all()


# Built once: every order runs it (R17).
_NFR_BY_LICENCE_IDS = select(NfrLicence).where(col(NfrLicence.licence_id).in_(bindparam("ids", expanding=True)))


async def nfr(session: AsyncSession, nfr_id: uuid.UUID) -> NfrLicence | None:
    return await session.get(NfrLicence, nfr_id)


def add_violation(session: AsyncSession, violation: NfrViolation) -> None:
    session.add(violation)


async def violations(session: AsyncSession, limit: int) -> Sequence[NfrViolation]:
    stmt = select(NfrViolation).order_by(col(NfrViolation.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


def add_review(session: AsyncSession, review: DirectoryReview) -> None:
    session.add(review)


async def review(session: AsyncSession, review_id: int, *, for_update: bool = False) -> DirectoryReview | None:
    stmt = select(DirectoryReview).where(col(DirectoryReview.id) == review_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def pending_reviews(session: AsyncSession, partner_id: uuid.UUID, kind: str) -> Sequence[DirectoryReview]:
    stmt = (
        select(DirectoryReview)
        .where(
            col(DirectoryReview.partner_id) == partner_id,
            col(DirectoryReview.kind) == kind,
            col(DirectoryReview.status) == "pending",
        )
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()


async def reviews(
    session: AsyncSession,
    *,
    status: str | None,
    kind: str | None,
    partner_id: uuid.UUID | None,
    before_id: int | None,
    limit: int,
) -> Sequence[DirectoryReview]:
    """Newest first."""
    stmt = select(DirectoryReview)
    if status is not None:
        stmt = stmt.where(col(DirectoryReview.status) == status)
    if kind is not None:
        stmt = stmt.where(col(DirectoryReview.kind) == kind)
    if partner_id is not None:
        stmt = stmt.where(col(DirectoryReview.partner_id) == partner_id)
    if before_id is not None:
        stmt = stmt.where(col(DirectoryReview.id) < before_id)
    stmt = stmt.order_by(col(DirectoryReview.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()
