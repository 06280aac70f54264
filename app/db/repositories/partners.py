"""SQL for partners and their status history."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    CompoundSelect,
    Uuid,
    bindparam,
    func,
    inspect,
    literal_column,
    null,
    or_,
    select,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import AgreementAcceptance, AgreementVersion, Partner, PartnerIdentifier, PartnerStatusChange
from app.db.types import UTCDateTime


async def get(session: AsyncSession, partner_id: uuid.UUID, *, for_update: bool = False) -> Partner | None:
    stmt = select(Partner).where(col(Partner.id) == partner_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


_KEPT = "partners.kept"


async def companies(session: AsyncSession, partner_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The company name of each partner among `partner_ids` that exists, in one statement."""
    wanted = sorted(set(partner_ids))
    if not wanted:
        return {}
    stmt = select(col(Partner.id), col(Partner.company)).where(col(Partner.id).in_(wanted))
    return {row[0]: row[1] for row in await session.execute(stmt)}


def keep(session: AsyncSession, partner: Partner) -> None:
    """Hold on to a partner read along with something else, for `known` later in this session (the
    session's identity map holds its objects weakly: it would forget it)."""
    session.info.setdefault(_KEPT, {})[partner.id] = partner


async def known(session: AsyncSession, partner_id: uuid.UUID) -> Partner | None:
    """The partner as kept by this session, else read. Kept for the session's life: for what does not
    change while a batch is applied (the own-company identifiers, R22), not for its level rank."""
    kept: dict[uuid.UUID, Partner] = session.info.get(_KEPT, {})
    partner = kept.get(partner_id)
    if partner is not None and not inspect(partner).expired_attributes:  # not expired by a rollback
        return partner
    return await get(session, partner_id)


_DECLARED = (
    select(col(PartnerIdentifier.partner_id), col(PartnerIdentifier.kind), col(PartnerIdentifier.value))
    .where(col(PartnerIdentifier.partner_id).in_(bindparam("ids", expanding=True)))
    .distinct()
)


async def declared_identifiers_of(
    session: AsyncSession, partner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, str]]]:
    """R22: every (kind, value) each partner ever declared, by partner (an empty list for none)."""
    found: dict[uuid.UUID, list[tuple[str, str]]] = {p: [] for p in partner_ids}
    if partner_ids:
        for partner_id, kind, value in await session.execute(_DECLARED, {"ids": sorted(set(partner_ids))}):
            found[partner_id].append((kind, value))
        for pairs in found.values():
            pairs.sort()
    return found


async def declared_identifiers(session: AsyncSession, partner_id: uuid.UUID) -> list[tuple[str, str]]:
    """R22: every (kind, value) the partner ever declared."""
    return (await declared_identifiers_of(session, [partner_id]))[partner_id]


async def held_identifiers(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[PartnerIdentifier]:
    """The identifiers the partner declares now (not withdrawn), oldest first."""
    stmt = (
        select(PartnerIdentifier)
        .where(col(PartnerIdentifier.partner_id) == partner_id, col(PartnerIdentifier.withdrawn_at).is_(None))
        .order_by(col(PartnerIdentifier.id))
    )
    return (await session.execute(stmt)).scalars().all()


async def identifier_history(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[PartnerIdentifier]:
    """Every identifier the partner declared, in the order it declared them."""
    stmt = (
        select(PartnerIdentifier)
        .where(col(PartnerIdentifier.partner_id) == partner_id)
        .order_by(col(PartnerIdentifier.declared_at), col(PartnerIdentifier.id))
    )
    return (await session.execute(stmt)).scalars().all()


async def email_taken(session: AsyncSession, email: str) -> bool:
    stmt = select(col(Partner.id)).where(col(Partner.contact_email) == email)
    return (await session.execute(stmt)).first() is not None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search(
    session: AsyncSession,
    *,
    status: str | None,
    country: str | None,
    q: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[Partner]:
    """Newest first, keyset-paginated on (created_at, id)."""
    stmt = select(Partner)
    if status:
        stmt = stmt.where(col(Partner.status) == status)
    if country:
        stmt = stmt.where(col(Partner.country) == country)
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(col(Partner.company)).like(pattern, escape="\\"),
                func.lower(col(Partner.contact_email)).like(pattern, escape="\\"),
                func.lower(col(Partner.contact_name)).like(pattern, escape="\\"),
                func.lower(func.coalesce(col(Partner.website), "")).like(pattern, escape="\\"),
            )
        )
    if created_from:
        stmt = stmt.where(col(Partner.created_at) >= created_from)
    if created_to:
        stmt = stmt.where(col(Partner.created_at) < created_to)
    if after:
        stmt = stmt.where(tuple_(col(Partner.created_at), col(Partner.id)) < tuple_(*after))
    stmt = stmt.order_by(col(Partner.created_at).desc(), col(Partner.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def status_history(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[PartnerStatusChange]:
    stmt = (
        select(PartnerStatusChange)
        .where(col(PartnerStatusChange.partner_id) == partner_id)
        .order_by(col(PartnerStatusChange.effective_at), col(PartnerStatusChange.id))
    )
    return (await session.execute(stmt)).scalars().all()


@dataclass(frozen=True)
class StandingFacts:
    """What R04 asks of a partner: its status history, the agreement versions and its acceptances."""

    statuses: list[tuple[str, datetime]]
    """(to_status, effective_at), oldest first."""
    versions: list[tuple[int, str, datetime, datetime]]
    """(id, version, published_at, accept_by) of every agreement version, oldest first."""
    acceptances: list[tuple[int, datetime]]
    """(agreement_version_id, accepted_at), oldest first."""


def _standing_facts_query(several: bool) -> CompoundSelect[Any]:
    """One partner's facts (`partner`), or several partners' (`partners`, expanding), each row
    with its partner (None for the agreement versions, which are everyone's)."""
    partner: BindParameter[Any] = bindparam("partners", expanding=True) if several else bindparam("partner")

    def of(column: Any) -> Any:
        return column.in_(partner) if several else column == partner

    no_time = type_coerce(null(), UTCDateTime())
    return union_all(
        select(
            literal_column("'status'").label("kind"),
            col(PartnerStatusChange.to_status).label("text"),
            col(PartnerStatusChange.effective_at).label("t1"),
            no_time.label("t2"),
            type_coerce(null(), BigInteger()).label("n"),
            col(PartnerStatusChange.id).label("ord"),
            col(PartnerStatusChange.partner_id).label("partner"),
        ).where(of(col(PartnerStatusChange.partner_id))),
        select(
            literal_column("'version'"),
            col(AgreementVersion.version),
            col(AgreementVersion.published_at),
            col(AgreementVersion.accept_by),
            col(AgreementVersion.id),
            col(AgreementVersion.id),
            type_coerce(null(), Uuid()),
        ),
        select(
            literal_column("'accepted'"),
            null(),
            col(AgreementAcceptance.accepted_at),
            null(),
            col(AgreementAcceptance.agreement_version_id),
            col(AgreementAcceptance.id),
            col(AgreementAcceptance.partner_id),
        ).where(of(col(AgreementAcceptance.partner_id))),
    )


_STANDING_FACTS = _standing_facts_query(several=False)
_STANDING_FACTS_OF_SEVERAL = _standing_facts_query(several=True)


def _facts(rows: list[tuple[Any, ...]]) -> StandingFacts:
    rows.sort(key=lambda r: (r[2], r[5]))  # by time, then id: the order of the separate queries
    return StandingFacts(
        statuses=[(r[1], r[2]) for r in rows if r[0] == "status"],
        versions=[(int(r[4]), r[1], r[2], r[3]) for r in rows if r[0] == "version"],
        acceptances=[(int(r[4]), r[2]) for r in rows if r[0] == "accepted"],
    )


async def standing_facts(session: AsyncSession, partner_id: uuid.UUID) -> StandingFacts:
    """The three in one round trip (the eligibility check runs for every credited order)."""
    return _facts([tuple(r) for r in await session.execute(_STANDING_FACTS, {"partner": partner_id})])


async def standing_facts_of(session: AsyncSession, partner_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StandingFacts]:
    """`standing_facts` of several partners, in one round trip."""
    if not partner_ids:
        return {}
    rows = [tuple(r) for r in await session.execute(_STANDING_FACTS_OF_SEVERAL, {"partners": list(partner_ids)})]
    shared = [r for r in rows if r[0] == "version"]
    return {p: _facts([*shared, *(r for r in rows if r[6] == p)]) for p in partner_ids}


async def ids_after(session: AsyncSession, after: uuid.UUID | None, *, limit: int) -> list[uuid.UUID]:
    """Partner ids in id order, after `after` (a batch of a job that walks every partner)."""
    stmt = select(col(Partner.id)).order_by(col(Partner.id)).limit(limit)
    if after is not None:
        stmt = stmt.where(col(Partner.id) > after)
    return list((await session.execute(stmt)).scalars().all())


async def with_status(session: AsyncSession, status: str, limit: int = 200) -> Sequence[Partner]:
    """Partners of one status, oldest first (the console's queue of applications)."""
    stmt = select(Partner).where(col(Partner.status) == status).order_by(col(Partner.created_at), col(Partner.id))
    return (await session.execute(stmt.limit(limit))).scalars().all()
