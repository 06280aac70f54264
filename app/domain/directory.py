"""The public partner directory (R18, R20) and not-for-resale licences (R17)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import directory as repo
from app.db.repositories import partners as partners_repo
from app.db.tables import DirectoryReview, NfrLicence, NfrViolation, Partner
from app.domain import audit, events, order_flags, terms
from app.domain.context import Context
from app.domain.errors import Conflict, Forbidden, Invalid, InvalidTransition, NotFound
from app.domain.identifiers import record_identifiers
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
NAME_AND_WEBSITE = "name_and_website"
"""The review kind of a new company name and website for the directory (R18)."""


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


_NOT_NULL = {
    "listed": "listed cannot be emptied.",
    "services": "services cannot be null; send [] for none.",
    "regions_served": "regions_served cannot be null; send [] for none.",
    "languages": "languages cannot be null; send [] for none.",
}
"""Profile fields a PATCH may change but not set to null (a list is emptied with [])."""


async def update_profile(
    session: AsyncSession, ctx: Context, partner_id: uuid.UUID, changes: dict[str, Any]
) -> Partner:
    """Change the partner's directory profile; each change is audited."""
    check_brand(changes)
    partner = await partners_repo.get(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    if partner.status == PartnerStatus.TERMINATED:
        raise Forbidden("A terminated partner's profile is closed.", code="partner_terminated")
    before = audit.snapshot(partner, PROFILE_FIELDS)
    keep_published_name_and_website(partner)
    for name, value in changes.items():
        if name not in PROFILE_FIELDS:
            raise Invalid(f"{name} is not part of the directory profile.", code="field_not_editable")
        if name in _NOT_NULL and value is None:
            raise Invalid(_NOT_NULL[name], code="field_required", field=name)
        setattr(partner, name, list(value) if isinstance(value, list) else value)
    after = audit.snapshot(partner, PROFILE_FIELDS)
    if after != before:
        partner.updated_at = ctx.now
        if {"description", "services"} & set(changes):
            await _submit_text(session, partner, ctx.now)
        if "website" in changes and before["website"] != after["website"]:
            await submit_name_and_website(session, partner, ctx.now)
            await record_identifiers(session, partner, ctx.now)  # R22: the old domain keeps counting
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


async def _submit_text(session: AsyncSession, partner: Partner, now: datetime) -> None:
    """R18: new public text waits for an admin; the directory keeps the last approved text meanwhile.
    A newer text supersedes one still pending; going back to the published text needs no review."""
    for pending in await repo.pending_reviews(session, partner.id, "text"):
        pending.status, pending.decided_at = "superseded", now
    if partner.description == partner.published_description and list(partner.services) == list(
        partner.published_services
    ):
        return
    repo.add_review(
        session,
        DirectoryReview(
            partner_id=partner.id,
            kind="text",
            description=partner.description,
            services=list(partner.services),
            submitted_at=now,
            status="pending",
        ),
    )


def keep_published_name_and_website(partner: Partner) -> None:
    """Before a change: a partner registered by a build before the published name and website shows
    its registered ones (null published name); keep them as published, so the change waits for review."""
    if partner.published_company is None:
        partner.published_company, partner.published_website = partner.company, partner.website


async def submit_name_and_website(session: AsyncSession, partner: Partner, now: datetime) -> None:
    """R18: a new company name or website is the partner's at once, but the directory keeps showing
    the last approved ones until an admin approves the new pair. A newer change supersedes one still
    pending; going back to the published pair needs no review."""
    for pending in await repo.pending_reviews(session, partner.id, NAME_AND_WEBSITE):
        pending.status, pending.decided_at = "superseded", now
    if partner.company == partner.published_company and partner.website == partner.published_website:
        return
    repo.add_review(
        session,
        DirectoryReview(
            partner_id=partner.id,
            kind=NAME_AND_WEBSITE,
            company=partner.company,
            website=partner.website,
            submitted_at=now,
            status="pending",
        ),
    )


async def reviews(
    session: AsyncSession,
    *,
    status: str | None,
    kind: str | None,
    partner_id: uuid.UUID | None,
    before_id: int | None,
    limit: int,
) -> Sequence[DirectoryReview]:
    """R18/R20: the review queue (or a partner's own reviews), newest first."""
    return await repo.reviews(
        session, status=status, kind=kind, partner_id=partner_id, before_id=before_id, limit=limit
    )


async def _pending_review(session: AsyncSession, review_id: int) -> DirectoryReview:
    review = await repo.review(session, review_id, for_update=True)
    if review is None:
        raise NotFound(f"No directory review {review_id}.", code="directory_review_not_found")
    if review.status != "pending":
        raise InvalidTransition(
            f"Directory review {review_id} is {review.status}, no longer pending.", code="directory_review_decided"
        )
    return review


def _decided(review: DirectoryReview, ctx: Context, status: str, reason: str | None) -> None:
    review.status, review.decided_at, review.decided_by, review.reason = status, ctx.now, ctx.actor, reason


async def approve_review(session: AsyncSession, ctx: Context, review_id: int) -> DirectoryReview:
    """R18: publish the reviewed text, or company name and website, in the directory."""
    review = await _pending_review(session, review_id)
    if review.kind == "company_name":
        raise InvalidTransition(
            f"A company name that spells the vendor's name other than {BRAND!r} cannot be approved (R20): the "
            "partner corrects it; meanwhile an admin may hide the partner from the directory.",
            code="company_name_not_approvable",
        )
    partner = await partners_repo.get(session, review.partner_id, for_update=True)
    assert partner is not None
    if review.kind == NAME_AND_WEBSITE:
        assert review.company is not None
        partner.published_company, partner.published_website = review.company, review.website
    else:
        partner.published_description, partner.published_services = review.description, list(review.services)
    partner.updated_at = ctx.now
    _decided(review, ctx, "approved", None)
    await session.flush()
    _record_decision(session, ctx, review, "directory_text.approved")
    return review


async def reject_review(session: AsyncSession, ctx: Context, review_id: int, *, reason: str) -> DirectoryReview:
    """R18: refuse the text with a reason for the partner; the directory keeps the last approved text."""
    review = await _pending_review(session, review_id)
    _decided(review, ctx, "rejected", reason)
    await session.flush()
    _record_decision(session, ctx, review, "directory_text.rejected")
    return review


def _record_decision(
    session: AsyncSession,
    ctx: Context,
    review: DirectoryReview,
    type: Literal["directory_text.approved", "directory_text.rejected"],
) -> None:
    assert review.id is not None
    events.record(
        session,
        type,
        events.DirectoryTextDecided(
            review_id=review.id,
            partner_id=review.partner_id,
            kind=review.kind,
            description={"text": review.description, "company_name": review.company}.get(review.kind),
            services=list(review.services),
            company=review.company,
            website=review.website,
            reason=review.reason,
        ),
        occurred_at=ctx.now,
        partner_id=review.partner_id,
        subject=f"directory_review:{review.id}",
        refs={"review_id": review.id},
    )
    audit.record(
        session,
        ctx,
        action=type.replace("directory_text", "directory_review"),
        object_type="directory_review",
        object_id=review.id,
        before={"status": "pending"},
        after={"status": review.status, "reason": review.reason},
    )


async def hide(session: AsyncSession, ctx: Context, partner_id: uuid.UUID, *, reason: str) -> Partner:
    """R18: an admin takes a partner out of the directory; only an admin puts it back."""
    partner = await partners_repo.get(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    before = audit.snapshot(partner, ("hidden_at", "hidden_reason"))
    partner.hidden_at, partner.hidden_reason, partner.updated_at = partner.hidden_at or ctx.now, reason, ctx.now
    await session.flush()
    audit.record(
        session,
        ctx,
        action="partner.directory_hidden",
        object_type="partner",
        object_id=partner.id,
        before=before,
        after=audit.snapshot(partner, ("hidden_at", "hidden_reason")),
    )
    return partner


async def unhide(session: AsyncSession, ctx: Context, partner_id: uuid.UUID, *, reason: str) -> Partner:
    """R18: an admin undoes its hiding (the partner's own opt-out, `listed`, is untouched)."""
    partner = await partners_repo.get(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    if partner.hidden_at is not None:
        before = audit.snapshot(partner, ("hidden_at", "hidden_reason"))
        partner.hidden_at, partner.hidden_reason, partner.updated_at = None, None, ctx.now
        await session.flush()
        audit.record(
            session,
            ctx,
            action="partner.directory_unhidden",
            object_type="partner",
            object_id=partner.id,
            before=before,
            after={"hidden_at": None, "reason": reason},
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


NFR_PURPOSES = ("demonstration", "training", "evaluation")


async def request_nfr(
    session: AsyncSession, ctx: Context, partner_id: uuid.UUID, sku: str, *, purpose: str, acknowledged: bool
) -> NfrLicence:
    """R17: an active partner takes a free licence of a product for demonstration, training or
    evaluation (one per product by default), acknowledging it is not for production use nor resale."""
    if purpose not in NFR_PURPOSES:
        raise Invalid(
            f"A not-for-resale licence is for {', '.join(NFR_PURPOSES)}, not {purpose!r}.",
            code="nfr_purpose_invalid",
            field="purpose",
        )
    if not acknowledged:
        raise Invalid(
            "Acknowledge that a not-for-resale licence is not for your company's production needs nor for use "
            "inside a product or service sold to customers (acknowledged: true).",
            code="nfr_acknowledgement_missing",
            field="acknowledged",
        )
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
    licence = NfrLicence(
        partner_id=partner_id,
        sku=sku,
        licence_id=f"nfr-{uuid.uuid4().hex}",
        issued_at=ctx.now,
        purpose=purpose,
        acknowledged_at=ctx.now,
    )
    session.add(licence)
    await session.flush()
    audit.record(
        session,
        ctx,
        action="nfr.issued",
        object_type="nfr_licence",
        object_id=licence.id,
        after={"partner_id": str(partner_id), "sku": sku, "licence_id": licence.licence_id, "purpose": purpose},
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
        if order_id is not None:  # an order that tried to sell it: listed with the other flagged orders
            order_flags.flag(
                session,
                kind="nfr_resale",
                order_id=order_id,
                order_line_id=None,
                partner_id=licence.partner_id,
                detail=f"not-for-resale licence {licence.licence_id} ({licence.sku}) sold",
                now=now,
            )


async def violations(session: AsyncSession, limit: int = 200) -> Sequence[NfrViolation]:
    return await repo.violations(session, limit)
