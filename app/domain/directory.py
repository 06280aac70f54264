"""The public partner directory (R18, R20) and not-for-resale licences (R17)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import directory as repo
from app.db.repositories import partners as partners_repo
from app.db.tables import NfrLicence, NfrViolation, Partner
from app.domain import audit, events, terms
from app.domain.context import Context
from app.domain.errors import Conflict, Invalid, InvalidTransition, NotFound
from app.domain.rules.brand import BRAND, misspellings
from app.domain.rules.partner_status import PartnerStatus

PROFILE_FIELDS = (
    "description",
    "services",
    "regions_served",
    "region",
    "listed",
    "website",
    "languages",
    "latitude",
    "longitude",
)
BRAND_CHECKED = ("description", "services", "regions_served", "region")


def check_brand(changes: dict[str, Any]) -> None:
    """R20: refuse any spelling of the vendor's name other than "Qalyptus", naming what was found."""
    for name in BRAND_CHECKED:
        value = changes.get(name)
        texts = value if isinstance(value, list) else [value] if isinstance(value, str) else []
        found = [spelling for text in texts for spelling in misspellings(text)]
        if found:
            raise Invalid(
                f"{name} spells the vendor's name as {', '.join(repr(f) for f in dict.fromkeys(found))}; "
                f"write it {BRAND!r}, with a capital Q and the rest lower case.",
                code="brand_misspelled",
                field=name,
                found=list(dict.fromkeys(found)),
            )


async def update_profile(
    session: AsyncSession, ctx: Context, partner_id: uuid.UUID, changes: dict[str, Any]
) -> Partner:
    """Change the partner's directory profile; each change is audited."""
    check_brand(changes)
    partner = await partners_repo.get(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    if partner.status == PartnerStatus.TERMINATED:
        raise InvalidTransition("A terminated partner's profile is closed.", code="partner_terminated")
    before = audit.snapshot(partner, PROFILE_FIELDS)
    for name, value in changes.items():
        if name not in PROFILE_FIELDS:
            raise Invalid(f"{name} is not part of the directory profile.", code="field_not_editable")
        if name == "listed" and value is None:
            raise Invalid("listed cannot be emptied.", code="field_required", field=name)
        setattr(partner, name, list(value) if isinstance(value, list) else value)
    after = audit.snapshot(partner, PROFILE_FIELDS)
    if after != before:
        partner.updated_at = ctx.now
        await session.flush()
        audit.record(
            session,
            ctx,
            action="partner.directory_updated",
            object_type="partner",
            object_id=partner.id,
            before=before,
            after=after,
        )
    return partner


async def listed(
    session: AsyncSession,
    *,
    country: str | None = None,
    region: str | None = None,
    level: str | None = None,
    language: str | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> list[repo.Listing]:
    """Active partners that did not opt out, best level first, then by name."""
    return await repo.listed(
        session, country=country, region=region, level=level, language=language, q=q, offset=offset, limit=limit
    )


async def request_nfr(session: AsyncSession, ctx: Context, partner_id: uuid.UUID, sku: str) -> NfrLicence:
    """R17: an active partner takes a free licence of a product for itself (one per product by default)."""
    partner = await partners_repo.get(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    if partner.status != PartnerStatus.ACTIVE:
        raise InvalidTransition("Only an active partner receives not-for-resale licences.", code="partner_not_active")
    program = (await terms.in_force(session, ctx.now)).terms
    if sku not in program.points_per_sku:
        raise Invalid(f"Unknown SKU {sku!r}.", code="unknown_sku", field="sku")
    held = [n for n in await repo.nfr_licences(session, partner_id) if n.sku == sku and n.revoked_at is None]
    if len(held) >= program.nfr_licences_per_product:
        raise Conflict(
            f"You hold {len(held)} not-for-resale licence(s) of {sku}, the most the program gives.",
            code="nfr_limit_reached",
        )
    licence = NfrLicence(partner_id=partner_id, sku=sku, licence_id=f"nfr-{uuid.uuid4().hex}", issued_at=ctx.now)
    session.add(licence)
    await session.flush()
    audit.record(
        session,
        ctx,
        action="nfr.issued",
        object_type="nfr_licence",
        object_id=licence.id,
        after={"partner_id": str(partner_id), "sku": sku, "licence_id": licence.licence_id},
    )
    return licence


async def nfr_licences(session: AsyncSession, partner_id: uuid.UUID | None) -> Sequence[NfrLicence]:
    return await repo.nfr_licences(session, partner_id)


async def revoke_nfr(session: AsyncSession, ctx: Context, nfr_id: uuid.UUID, reason: str) -> NfrLicence:
    licence = await repo.nfr(session, nfr_id)
    if licence is None:
        raise NotFound(f"No not-for-resale licence {nfr_id}.", code="nfr_not_found")
    if licence.revoked_at is None:
        licence.revoked_at, licence.revoked_reason = ctx.now, reason
        await session.flush()
        audit.record(
            session,
            ctx,
            action="nfr.revoked",
            object_type="nfr_licence",
            object_id=licence.id,
            after={"reason": reason},
        )
    return licence


async def nfr_in(session: AsyncSession, licence_ids: Sequence[str | None]) -> list[NfrLicence]:
    """The not-for-resale licences among these licence ids."""
    return list(await repo.nfr_by_licence_ids(session, [i for i in licence_ids if i]))


def flag_nfr(
    session: AsyncSession, licences: Sequence[NfrLicence], *, source: str, order_id: str | None, now: datetime
) -> None:
    """R17: keep each attempt to sell a not-for-resale licence for admins."""
    for licence in licences:
        repo.add_violation(
            session,
            NfrViolation(
                licence_id=licence.licence_id,
                partner_id=licence.partner_id,
                source=source,
                order_id=order_id,
                recorded_at=now,
            ),
        )
        if order_id is not None:
            events.record(
                session,
                "order.flagged",
                events.OrderFlagged(
                    order_id=order_id,
                    kind="nfr_resale",
                    partner_id=licence.partner_id,
                    detail=f"Not-for-resale licence {licence.licence_id} was sold ({source}).",
                ),
                occurred_at=now,
                partner_id=licence.partner_id,
                subject=f"order:{order_id}",
                refs={"licence_id": licence.licence_id},
            )


async def violations(session: AsyncSession, limit: int = 200) -> Sequence[NfrViolation]:
    return await repo.violations(session, limit)
