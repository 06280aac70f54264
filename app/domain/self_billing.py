"""The self-billing agreement: the partner lets the vendor issue its commission invoices. An admin
publishes its versions; a partner (or an admin for it) accepts the current one. A partner is payable
only while it has accepted the version in force (`app.domain.payee.payability`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import partners as partners_repo
from app.db.repositories import payee as repo
from app.db.tables import SelfBillingAcceptance, SelfBillingVersion
from app.domain import audit, events
from app.domain.context import Context
from app.domain.errors import Conflict, Forbidden, NotFound
from app.domain.rules.partner_status import PartnerStatus


async def versions(session: AsyncSession) -> Sequence[SelfBillingVersion]:
    """Every published version, oldest first."""
    return await repo.all_versions(session)


async def current(session: AsyncSession, now: datetime) -> SelfBillingVersion:
    """The version in force: the one partners accept."""
    version = await repo.current_version(session, now)
    if version is None:
        raise NotFound("No self-billing agreement has been published yet.", code="no_self_billing_agreement")
    return version


async def publish(
    session: AsyncSession, ctx: Context, *, version: str, title: str, url: str | None
) -> SelfBillingVersion:
    """Publish a new version now; from now on only partners that accept it are payable."""
    if await repo.version_named(session, version) is not None:
        raise Conflict(
            f"Self-billing agreement version {version!r} already exists.", code="self_billing_version_exists"
        )
    row = SelfBillingVersion(version=version, title=title, url=url, published_at=ctx.now, published_by=ctx.actor)
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:  # published under the same name by a concurrent request
        raise Conflict(
            f"Self-billing agreement version {version!r} already exists.", code="self_billing_version_exists"
        ) from exc
    audit.record(
        session,
        ctx,
        action="self_billing.published",
        object_type="self_billing_version",
        object_id=version,
        after=audit.snapshot(row, ("version", "title", "url", "published_at")),
    )
    return row


async def accept(
    session: AsyncSession, ctx: Context, partner_id: uuid.UUID, version: str
) -> tuple[SelfBillingAcceptance, bool]:
    """Record the partner's acceptance of the current version; accepting it twice keeps the first
    date. Returns the acceptance and whether it is new."""
    partner = await partners_repo.get(session, partner_id)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    if partner.status == PartnerStatus.TERMINATED:
        raise Forbidden("A terminated partner cannot accept the self-billing agreement.", code="partner_terminated")
    row = await repo.version_named(session, version)
    if row is None or row.published_at > ctx.now:
        raise NotFound(
            f"No published self-billing agreement version {version!r}.", code="self_billing_version_not_found"
        )
    assert row.id is not None
    existing = await repo.acceptance(session, partner_id, row.id)
    if existing is not None:
        return existing, False
    in_force = await current(session, ctx.now)
    if in_force.id != row.id:
        raise Conflict(
            f"Version {version!r} is not the self-billing agreement in force; accept {in_force.version!r}.",
            code="self_billing_version_not_current",
        )
    acceptance = SelfBillingAcceptance(
        partner_id=partner_id, version_id=row.id, accepted_at=ctx.now, accepted_by=ctx.actor
    )
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
        action="self_billing.accepted",
        object_type="partner",
        object_id=partner_id,
        after={"self_billing_version": version, "accepted_at": ctx.now.isoformat()},
    )
    details = await repo.details_at(session, partner_id)
    held_until = details.payouts_held_until if details is not None else None
    events.record(
        session,
        "payee.changed",
        events.PayeeChanged(
            partner_id=partner_id,
            changed=["self_billing_agreement"],
            bank_details_changed=False,
            payouts_held_until=held_until if held_until is not None and held_until > ctx.now else None,
            self_billing_version=version,
            by=ctx.actor,
        ),
        occurred_at=ctx.now,
        partner_id=partner_id,
        subject=f"partner:{partner_id}",
        refs={"self_billing_acceptance_id": acceptance.id},
    )
    return acceptance, True


async def acceptances(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[tuple[SelfBillingAcceptance, str]]:
    """The partner's acceptances with the version each names, oldest first."""
    if await partners_repo.get(session, partner_id) is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    return await repo.acceptances(session, partner_id)
