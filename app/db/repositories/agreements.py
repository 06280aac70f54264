"""SQL for agreement versions and partners' acceptances."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import AgreementAcceptance, AgreementVersion


async def all_versions(session: AsyncSession) -> Sequence[AgreementVersion]:
    stmt = select(AgreementVersion).order_by(col(AgreementVersion.published_at), col(AgreementVersion.id))
    return (await session.execute(stmt)).scalars().all()


async def current(session: AsyncSession, at: datetime) -> AgreementVersion | None:
    """The newest version published at or before `at`."""
    stmt = (
        select(AgreementVersion)
        .where(col(AgreementVersion.published_at) <= at)
        .order_by(col(AgreementVersion.published_at).desc(), col(AgreementVersion.id).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_version(session: AsyncSession, version: str) -> AgreementVersion | None:
    stmt = select(AgreementVersion).where(col(AgreementVersion.version) == version)
    return (await session.execute(stmt)).scalar_one_or_none()


async def acceptances(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[AgreementAcceptance]:
    stmt = (
        select(AgreementAcceptance)
        .where(col(AgreementAcceptance.partner_id) == partner_id)
        .order_by(col(AgreementAcceptance.accepted_at))
    )
    return (await session.execute(stmt)).scalars().all()


async def acceptance(session: AsyncSession, partner_id: uuid.UUID, version_id: int) -> AgreementAcceptance | None:
    stmt = select(AgreementAcceptance).where(
        col(AgreementAcceptance.partner_id) == partner_id,
        col(AgreementAcceptance.agreement_version_id) == version_id,
    )
    return (await session.execute(stmt)).scalar_one_or_none()
