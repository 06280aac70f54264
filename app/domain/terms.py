"""Program terms: read the version in force, publish a new one, add a SKU (R01, R02, R21)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import terms as repo
from app.db.tables import ProgramTermsVersion
from app.domain import audit
from app.domain.context import Context
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.rules.terms import Terms


@dataclass(frozen=True)
class TermsVersion:
    version: int
    effective_from: datetime
    terms: Terms


def _view(row: ProgramTermsVersion) -> TermsVersion:
    return TermsVersion(row.version, row.effective_from, Terms.model_validate(row.terms))


async def in_force(session: AsyncSession, at: datetime) -> TermsVersion:
    """The terms in force at `at`."""
    row = await repo.in_force(session, at)
    if row is None:
        raise NotFound(f"No program terms were in force at {at.isoformat()}.", code="no_terms")
    return _view(row)


async def versions(session: AsyncSession) -> list[TermsVersion]:
    """Every version, oldest first."""
    return [_view(r) for r in await repo.all_versions(session)]


async def publish(session: AsyncSession, ctx: Context, *, effective_from: datetime, terms: Terms) -> TermsVersion:
    """Publish terms for a future date; past entries keep the version they were made under."""
    if effective_from <= ctx.now:
        raise Invalid(
            "New terms take effect in the future; past orders keep the terms they were evaluated under.",
            code="effective_from_not_in_future",
            field="effective_from",
        )
    rows = await repo.all_versions(session)
    if any(r.effective_from >= effective_from for r in rows):
        raise Conflict("A version already takes effect at or after that moment.", code="terms_version_overlap")
    version = max((r.version for r in rows), default=0) + 1
    row = ProgramTermsVersion(
        version=version,
        effective_from=effective_from,
        published_at=ctx.now,
        published_by=ctx.actor,
        terms=terms.model_dump(mode="json"),
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        ctx,
        action="terms.published",
        object_type="program_terms",
        object_id=version,
        after={"effective_from": effective_from.isoformat(), "terms": row.terms},
    )
    return _view(row)


async def add_sku(session: AsyncSession, ctx: Context, *, sku: str, points: int) -> Sequence[int]:
    """Add a SKU to every terms version that lacks it.

    Only additive: no entry was ever made for an unknown SKU (such orders were parked), so no past
    entry changes. Returns the versions amended.
    """
    amended: list[int] = []
    rows = await repo.all_versions(session)
    for row in rows:
        terms = Terms.model_validate(row.terms)
        if sku in terms.points_per_sku:
            continue
        updated = terms.model_copy(update={"points_per_sku": {**terms.points_per_sku, sku: points}})
        row.terms = Terms.model_validate(updated.model_dump()).model_dump(mode="json")
        amended.append(row.version)
    if not amended:
        raise Conflict(f"SKU {sku!r} is already in every terms version.", code="sku_exists")
    await session.flush()
    audit.record(
        session,
        ctx,
        action="terms.sku_added",
        object_type="program_terms",
        object_id=sku,
        after={"sku": sku, "points": points, "versions": amended},
    )
    return amended
