"""SQL for agreement versions and partners' acceptances."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import AgreementAcceptance, AgreementVersion


async def all_versions(session: AsyncSession) -> Sequence[AgreementVersion]:
    stmt = select(AgreementVersion).order_by(
        AgreementVersion.published_at, AgreementVersion.id
    )  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalars().all()


async def current(session: AsyncSession, at: datetime) -> AgreementVersion | None:
    """The newest version published at or before `at`."""
    stmt = (
        select(AgreementVersion)
        .where(AgreementVersion.published_at <= at)  # type: ignore[arg-type]
        .order_by(AgreementVersion.published_at.desc(), AgreementVersion.id.desc())  # type: ignore[attr-defined, union-attr]
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_version(session: AsyncSession, version: str) -> AgreementVersion | None:
    stmt = select(AgreementVersion).where(AgreementVersion.version == version)  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalar_one_or_none()


async def acceptances(
    session: AsyncSession, partner_id: uuid.UUID
) -> Sequence[AgreementAcceptance]:
    stmt = (
        select(AgreementAcceptance)
        .where(AgreementAcceptance.partner_id == partner_id)  # type: ignore[arg-type]
        .order_by(AgreementAcceptance.accepted_at)  # type: ignore[arg-type]
    )
    return (await session.execute(stmt)).scalars().all()


async def acceptance(
    session: AsyncSession, partner_id: uuid.UUID, version_id: int
) -> AgreementAcceptance | None:
    stmt = select(AgreementAcceptance).where(
        AgreementAcceptance.partner_id == partner_id,  # type: ignore[arg-type]
        AgreementAcceptance.agreement_version_id == version_id,  # type: ignore[arg-type]
    )
    return (await session.execute(stmt)).scalar_one_or_none()
