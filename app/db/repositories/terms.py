"""SQL for program terms versions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import ProgramTermsVersion

_ALL_REFS = select(  # every version, latest first: the order `in_force_ref` picks from
    col(ProgramTermsVersion.version), col(ProgramTermsVersion.effective_from), col(ProgramTermsVersion.digest)
).order_by(col(ProgramTermsVersion.effective_from).desc(), col(ProgramTermsVersion.version).desc())
_IN_FORCE_REF = _ALL_REFS.where(col(ProgramTermsVersion.effective_from) <= bindparam("at")).limit(1)


async def in_force_ref(session: AsyncSession, at: datetime) -> tuple[int, datetime, str] | None:
    """Version, start and digest of the terms in force at `at`, without the terms themselves."""
    row = (await session.execute(_IN_FORCE_REF, {"at": at})).first()
    return None if row is None else (row[0], row[1], row[2])


async def all_refs(session: AsyncSession) -> list[tuple[int, datetime, str]]:
    """(version, effective_from, digest) of every version, latest first (as `in_force_ref` picks)."""
    return [(r[0], r[1], r[2]) for r in await session.execute(_ALL_REFS)]


async def terms_of(session: AsyncSession, version: int) -> dict[str, Any]:
    stmt = select(col(ProgramTermsVersion.terms)).where(col(ProgramTermsVersion.version) == version)
    terms: dict[str, Any] = (await session.execute(stmt)).scalar_one()
    return terms


async def all_versions(session: AsyncSession) -> Sequence[ProgramTermsVersion]:
    stmt = select(ProgramTermsVersion).order_by(col(ProgramTermsVersion.version))
    return (await session.execute(stmt)).scalars().all()


async def latest_version_number(session: AsyncSession) -> int:
    return int((await session.execute(select(func.max(ProgramTermsVersion.version)))).scalar_one() or 0)
