"""SQL for program terms versions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import ProgramTermsVersion


async def in_force(session: AsyncSession, at: datetime) -> ProgramTermsVersion | None:
    stmt = (
        select(ProgramTermsVersion)
        .where(col(ProgramTermsVersion.effective_from) <= at)
        .order_by(col(ProgramTermsVersion.effective_from).desc(), col(ProgramTermsVersion.version).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def all_versions(session: AsyncSession) -> Sequence[ProgramTermsVersion]:
    stmt = select(ProgramTermsVersion).order_by(col(ProgramTermsVersion.version))
    return (await session.execute(stmt)).scalars().all()


async def latest_version_number(session: AsyncSession) -> int:
    return int((await session.execute(select(func.max(ProgramTermsVersion.version)))).scalar_one() or 0)
