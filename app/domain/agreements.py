"""Partner agreement versions and partners' acceptances of them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import agreements as repo
from app.db.repositories import partners as partners_repo
from app.db.tables import AgreementAcceptance, AgreementVersion
from app.domain import audit
from app.domain.context import Context
from app.domain.errors import Conflict, Forbidden, Invalid, NotFound
from app.domain.rules.partner_status import PartnerStatus


async def versions(session: AsyncSession) -> Sequence[AgreementVersion]:
    """Every published version, oldest first."""
    return await repo.all_versions(session)


async def current(session: AsyncSession, now: datetime) -> AgreementVersion:
    """The version new partners accept."""
    version = await repo.current(session, now)
    if version is None:
        raise NotFound("No partner agreement has been published yet.", code="no_agreement")
    return version


async def publish(
    session: AsyncSession,
    ctx: Context,
    *,
    version: str,
    title: str,
    url: str | None,
    accept_by: datetime,
) -> AgreementVersion:
    """Publish a new version now; partners must accept it by `accept_by`."""
    if accept_by < ctx.now:
        raise Invalid(
            "accept_by must not lie in the past.",
            code="accept_by_in_past",
            field="accept_by",
        )
    latest = await repo.current(session, ctx.now)
    if latest is not None and accept_by < latest.accept_by:
        raise Invalid(
            f"accept_by must not come before that of version {latest.version!r} ({latest.accept_by.isoformat()}).",
            code="accept_by_before_previous",
            field="accept_by",
        )
    if await repo.by_version(session, version) is not None:
        raise Conflict(
            f"Agreement version {version!r} already exists.",
            code="agreement_version_exists",
        )
    row = AgreementVersion(version=version, title=title, url=url, published_at=ctx.now, accept_by=accept_by)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"Agreement version {version!r} already exists.",
            code="agreement_version_exists",
        ) from exc
    audit.record(
        session,
        ctx,
        action="agreement.published",
        object_type="agreement_version",
        object_id=version,
        after=audit.snapshot(row, ("version", "title", "url", "published_at", "accept_by")),
    )
    return row


async def accept(
    session: AsyncSession, ctx: Context, partner_id: uuid.UUID, version: str
) -> tuple[AgreementAcceptance, bool]:
    """Record the partner's acceptance of a version; accepting twice keeps the first date.

    Returns the acceptance and whether it is new.
    """
    partner = await partners_repo.get(session, partner_id)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    if partner.status == PartnerStatus.TERMINATED:
        raise Forbidden("A terminated partner cannot accept the agreement.", code="partner_terminated")
    row = await repo.by_version(session, version)
    if row is None or row.published_at > ctx.now:
        raise NotFound(
            f"No published agreement version {version!r}.",
            code="agreement_version_not_found",
        )
    assert row.id is not None
    existing = await repo.acceptance(session, partner_id, row.id)
    if existing is not None:
        return existing, False
    acceptance = AgreementAcceptance(partner_id=partner_id, agreement_version_id=row.id, accepted_at=ctx.now)
    try:
        async with session.begin_nested():
            session.add(acceptance)
    except IntegrityError:  # accepted at the same moment by a concurrent request
        concurrent = await repo.acceptance(session, partner_id, row.id)
        assert concurrent is not None
        return concurrent, False
    audit.record(
        session,
        ctx,
        action="agreement.accepted",
        object_type="partner",
        object_id=partner_id,
        after={"agreement_version": version, "accepted_at": ctx.now.isoformat()},
    )
    return acceptance, True


async def acceptances(session: AsyncSession, partner_id: uuid.UUID) -> list[tuple[AgreementAcceptance, str]]:
    """The partner's acceptances with the version each names, oldest first."""
    names = {v.id: v.version for v in await repo.all_versions(session)}
    return [(a, names[a.agreement_version_id]) for a in await repo.acceptances(session, partner_id)]
