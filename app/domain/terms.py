"""Program terms: read the version in force, publish a new one, add a SKU (R01, R02, R21)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import read_cache
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


def digest(terms: dict[str, Any]) -> str:
    """SHA-256 of a terms document in canonical JSON: equal content, equal digest."""
    return hashlib.sha256(json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# Parsed terms by digest. A digest names content, not a row, so the cache is right for any database
# and any number of processes: a published or amended version has a new digest and is parsed anew.
# Terms are frozen models, safe to share.
_PARSED: dict[str, Terms] = {}
_PARSED_MAX = 64


def _parsed(terms_digest: str, document: dict[str, Any]) -> Terms:
    terms = _PARSED.get(terms_digest)
    if terms is None:
        terms = Terms.model_validate(document)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[terms_digest] = terms
    return terms


def _view(row: ProgramTermsVersion) -> TermsVersion:
    return TermsVersion(row.version, row.effective_from, _parsed(row.digest, row.terms))


async def in_force(session: AsyncSession, at: datetime) -> TermsVersion:
    """The terms in force at `at`; the JSON is read and validated only when this process has not yet
    parsed that content. A request's session picks the version from the versions the process holds
    (app/db/read_cache.py: no round trip in the steady state); any other session reads the one
    version (one small indexed read)."""
    cache = read_cache.of(session)
    if cache is not None:
        await cache.refresh(session)
        if not cache.available:
            cache = None
    if cache is None:
        ref = await repo.in_force_ref(session, at)
    else:
        refs = cache.terms_refs
        if refs is None:
            generation = cache.generation
            refs = await repo.all_refs(session)
            cache.remember_terms(refs, generation)
        ref = _in_force_among(refs, at)
    if ref is None:
        raise NotFound(f"No program terms were in force at {at.isoformat()}.", code="no_terms")
    return await of_ref(session, ref)


def remembered(cache: read_cache.ReadCache, at: datetime) -> TermsVersion | None:
    """The terms in force at `at` from this process's memory alone: what `in_force` answers without a
    round trip (the cache is current, holds the versions, and this process has parsed that one). None
    when only `in_force` can tell."""
    refs = cache.terms_refs
    if refs is None or not cache.current():
        return None
    ref = _in_force_among(refs, at)
    terms = _PARSED.get(ref[2]) if ref is not None else None
    if ref is None or terms is None:
        return None
    return TermsVersion(ref[0], ref[1], terms)


def _in_force_among(refs: list[tuple[int, datetime, str]], at: datetime) -> tuple[int, datetime, str] | None:
    """The reference in force at `at` among every version's, latest first (as `in_force_ref` picks)."""
    return next((r for r in refs if r[1] <= at), None)


async def of_ref(session: AsyncSession, ref: tuple[int, datetime, str]) -> TermsVersion:
    """The version a (version, effective_from, digest) reference names, parsed once per process."""
    version, effective_from, terms_digest = ref
    terms = _PARSED.get(terms_digest)
    if terms is None:
        terms = _parsed(terms_digest, await repo.terms_of(session, version))
    return TermsVersion(version, effective_from, terms)


async def in_force_then_and_now(
    session: AsyncSession, then: datetime, now: datetime
) -> tuple[TermsVersion, TermsVersion]:
    """The terms in force at `then` and at `now`: one read when `then` falls under the current
    version (nearly always: an event is usually recent)."""
    current = await in_force(session, now)
    if current.effective_from <= then <= now:
        return current, current
    return await in_force(session, then), current


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
    document = terms.model_dump(mode="json")
    row = ProgramTermsVersion(
        version=version,
        effective_from=effective_from,
        published_at=ctx.now,
        published_by=ctx.actor,
        terms=document,
        digest=digest(document),
    )
    session.add(row)
    await session.flush()
    read_cache.changed(session, read_cache.TERMS)
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
        terms = _parsed(row.digest, row.terms)
        if sku in terms.points_per_sku:
            continue
        updated = terms.model_copy(update={"points_per_sku": {**terms.points_per_sku, sku: points}})
        row.terms = Terms.model_validate(updated.model_dump()).model_dump(mode="json")
        row.digest = digest(row.terms)
        amended.append(row.version)
    if not amended:
        raise Conflict(f"SKU {sku!r} is already in every terms version.", code="sku_exists")
    await session.flush()
    read_cache.changed(session, read_cache.TERMS)
    audit.record(
        session,
        ctx,
        action="terms.sku_added",
        object_type="program_terms",
        object_id=sku,
        after={"sku": sku, "points": points, "versions": amended},
    )
    return amended
