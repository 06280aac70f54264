"""Levels when program terms take effect (R03): recompute every partner's stored level under them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import directory as directory_repo
from app.db.repositories import ledgers as ledgers_repo
from app.db.repositories import partners as partners_repo
from app.db.tables import LevelChange
from app.domain import events, terms


async def terms_to_take_effect(session: AsyncSession, now: datetime) -> terms.TermsVersion | None:
    """The version in force now, unless it has taken effect already (its event is the record)."""
    current = await terms.in_force(session, now)
    if await events.exists(session, "terms.took_effect", f"terms:{current.version}"):
        return None
    return current


async def recompute(
    session: AsyncSession, version: terms.TermsVersion, now: datetime, *, after: uuid.UUID | None, limit: int
) -> tuple[int, int, uuid.UUID | None]:
    """One batch of partners, in id order after `after`: store the level `version` gives their points,
    with a level-history row dated `effective_from` naming the version as the cause. Returns how many
    partners were read, how many levels changed, and where the next batch starts."""
    partner_ids = await partners_repo.ids_after(session, after, limit=limit)
    changed = 0
    for partner_id in partner_ids:
        balance = await ledgers_repo.lock_balance(session, partner_id, now)
        level = version.terms.level_for(balance.points)
        if level == balance.level:
            continue
        before = balance.level
        balance.level, balance.updated_at = level, now
        await directory_repo.set_level_rank(session, partner_id, level)
        record_change(
            session,
            partner_id,
            from_level=before,
            to_level=level,
            points=balance.points,
            changed_at=version.effective_from,
            recorded_at=now,
            cause=events.LevelCause(terms_version=version.version),
        )
        changed += 1
    await session.flush()
    return len(partner_ids), changed, (partner_ids[-1] if partner_ids else after)


def record_change(
    session: AsyncSession,
    partner_id: uuid.UUID,
    *,
    from_level: str,
    to_level: str,
    points: int,
    changed_at: datetime,
    recorded_at: datetime,
    cause: events.LevelCause,
) -> None:
    """R03: a level change kept in the partner's history, and its `partner.level_changed` event, both
    naming what caused it: a points entry, or a terms version taking effect."""
    session.add(
        LevelChange(
            partner_id=partner_id,
            from_level=from_level,
            to_level=to_level,
            points_after=points,
            changed_at=changed_at,
            points_entry_id=cause.points_entry_id,
            terms_version=cause.terms_version,
        )
    )
    refs = {"points_entry_id": cause.points_entry_id} if cause.points_entry_id is not None else {}
    if cause.terms_version is not None:
        refs["terms_version"] = cause.terms_version
    events.record(
        session,
        "partner.level_changed",
        events.PartnerLevelChanged(
            partner_id=partner_id,
            from_level=from_level,
            to_level=to_level,
            points=points,
            changed_at=changed_at,
            cause=cause,
        ),
        occurred_at=changed_at,
        recorded_at=recorded_at,
        partner_id=partner_id,
        subject=f"partner:{partner_id}",
        refs=refs,
    )


def took_effect(
    session: AsyncSession, version: terms.TermsVersion, now: datetime, *, partners: int, changed: int
) -> None:
    events.record(
        session,
        "terms.took_effect",
        events.TermsTookEffect(
            version=version.version,
            effective_from=version.effective_from,
            partners_recomputed=partners,
            levels_changed=changed,
        ),
        occurred_at=version.effective_from,
        recorded_at=now,
        partner_id=None,
        subject=f"terms:{version.version}",
        refs={"terms_version": version.version},
    )
