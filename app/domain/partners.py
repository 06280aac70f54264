"""Partner registration, profile, status changes and standing (R04)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import agreements as agreements_repo
from app.db.repositories import customers as customers_repo
from app.db.repositories import directory as directory_repo
from app.db.repositories import partners as repo
from app.db.repositories import people as people_repo
from app.db.repositories import program as program_repo
from app.db.tables import AgreementAcceptance, Partner, PartnerIdentifier, PartnerStatusChange
from app.domain import api_keys, audit, directory, events
from app.domain.context import Context
from app.domain.errors import Conflict, Forbidden, Invalid, InvalidTransition, NotFound
from app.domain.identifiers import record_identifiers
from app.domain.rules.brand import BRAND, misspellings
from app.domain.rules.identifiers import (
    normalise_vat,
    vat_problem,
)
from app.domain.rules.partner_status import (
    Acceptance,
    AgreementBinding,
    AgreementVersionView,
    PartnerStatus,
    StatusAction,
    StatusPeriod,
    agreement_binding_at,
    next_status,
    status_at,
)

PROFILE_FIELDS = (
    "company",
    "country",
    "contact_name",
    "contact_email",
    "website",
    "vat_id",
    "languages",
)
AUDIT_FIELDS = (*PROFILE_FIELDS, "status")


@dataclass(frozen=True)
class Registered:
    partner: Partner
    key: api_keys.IssuedKey


async def identifier_history(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[PartnerIdentifier]:
    """R22: every identifier the partner declared, with when it held it."""
    await get(session, partner_id)
    return await repo.identifier_history(session, partner_id)


async def get(session: AsyncSession, partner_id: uuid.UUID) -> Partner:
    """One partner, or NotFound."""
    partner = await repo.get(session, partner_id)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    return partner


def check_company_name(company: str) -> None:
    """R20: the company name spells the vendor's name "Qalyptus", like the directory text."""
    found = misspellings(company)
    if found:
        raise Invalid(
            f"company spells the vendor's name as {', '.join(repr(f) for f in found)}; "
            f"write it {BRAND!r}, with a capital Q and the rest lower case.",
            code="brand_misspelled",
            field="company",
            found=found,
        )


def checked_vat(vat_id: str | None, country: str) -> str | None:
    """R22: a partner's or customer's VAT id, normalised, or Invalid naming why it is not valid."""
    if vat_id is None:
        return None
    problem = vat_problem(vat_id, country)
    if problem is not None:
        raise Invalid(f"vat_id {vat_id} {problem}", code="vat_id_invalid", field="vat_id")
    return normalise_vat(vat_id, country)


async def _email_must_be_free(session: AsyncSession, email: str) -> None:
    if await repo.email_taken(session, email):
        raise Conflict(
            f"A partner with the contact e-mail {email} is already registered.",
            code="partner_already_registered",
        )


async def _flush_unique(session: AsyncSession, email: str) -> None:
    """Flush, turning a lost race on the contact e-mail into the same refusal as the check."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"A partner with the contact e-mail {email} is already registered.",
            code="partner_already_registered",
        ) from exc


async def register(
    session: AsyncSession,
    ctx: Context,
    *,
    company: str,
    country: str,
    contact_name: str,
    contact_email: str,
    website: str | None,
    languages: Sequence[str],
    agreement_version: str,
    vat_id: str | None = None,
) -> Registered:
    """Register a partner who accepts the current agreement; return it with its first key."""
    current = await agreements_repo.current(session, ctx.now)
    if current is None:
        raise Conflict("No partner agreement has been published yet.", code="no_agreement")
    if agreement_version != current.version:
        raise Invalid(
            f"Registration must accept the current agreement version {current.version!r}, not {agreement_version!r}.",
            code="agreement_version_not_current",
            current_version=current.version,
        )
    email = contact_email.lower()
    check_company_name(company)
    vat = checked_vat(vat_id, country)
    await _email_must_be_free(session, email)
    program = await program_repo.settings(session)
    status = PartnerStatus.ACTIVE if program.auto_approve else PartnerStatus.PENDING
    partner = Partner(
        company=company,
        country=country,
        contact_name=contact_name,
        contact_email=email,
        website=website,
        published_company=company,  # R18: registered with, shown until a change is approved
        published_website=website,
        vat_id=vat,
        languages=list(languages),
        status=status,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(partner)
    await _flush_unique(session, email)
    await record_identifiers(session, partner, ctx.now, new=True)
    session.add(
        PartnerStatusChange(
            partner_id=partner.id,
            from_status=None,
            to_status=status,
            effective_at=ctx.now,
            reason="registered" + ("; approved automatically" if program.auto_approve else ""),
            actor=ctx.actor,
        )
    )
    assert current.id is not None
    session.add(AgreementAcceptance(partner_id=partner.id, agreement_version_id=current.id, accepted_at=ctx.now))
    audit.record(
        session,
        ctx,
        action="partner.registered",
        object_type="partner",
        object_id=partner.id,
        after={
            **audit.snapshot(partner, AUDIT_FIELDS),
            "agreement_version": current.version,
        },
    )
    events.record(
        session,
        "partner.registered",
        events.PartnerRegistered(partner_id=partner.id, company=company, country=country, status=status.value),
        occurred_at=ctx.now,
        partner_id=partner.id,
        subject=f"partner:{partner.id}",
    )
    key = await api_keys.issue(session, ctx, kind="partner", name="default", partner_id=partner.id)
    return Registered(partner, key)


async def search(
    session: AsyncSession,
    *,
    status: str | None = None,
    country: str | None = None,
    q: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> Sequence[Partner]:
    """Partners matching every given filter, newest first."""
    return await repo.search(
        session,
        status=status,
        country=country,
        q=q,
        created_from=created_from,
        created_to=created_to,
        after=after,
        limit=limit,
    )


async def update_profile(
    session: AsyncSession, ctx: Context, partner_id: uuid.UUID, changes: dict[str, Any]
) -> Partner:
    """Change the given profile fields; an unchanged value writes nothing."""
    partner = await repo.get(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    if partner.status == PartnerStatus.TERMINATED:
        raise Forbidden("A terminated partner's profile is closed.", code="partner_terminated")
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:  # the router's schema forbids them; this guards other callers
        raise Invalid(f"Fields {sorted(unknown)} cannot be changed.", code="field_not_editable")
    if "contact_email" in changes and changes["contact_email"] is not None:
        changes["contact_email"] = changes["contact_email"].lower()
        if changes["contact_email"] != partner.contact_email:
            await _email_must_be_free(session, changes["contact_email"])
    for required in (
        "company",
        "country",
        "contact_name",
        "contact_email",
        "languages",
    ):
        if required in changes and changes[required] is None:
            raise Invalid(f"{required} cannot be emptied.", code="field_required", field=required)
    if changes.get("company") is not None and changes["company"] != partner.company:
        check_company_name(changes["company"])  # R20; a name that broke it before stays until changed
        for review in await directory_repo.pending_reviews(session, partner.id, "company_name"):
            review.status, review.decided_at, review.decided_by = "resolved", ctx.now, ctx.actor
            review.reason = f"the company name was changed to {changes['company']!r}"
    if changes.get("vat_id") is not None:
        changes["vat_id"] = checked_vat(changes["vat_id"], changes.get("country") or partner.country)
    before = audit.snapshot(partner, PROFILE_FIELDS)
    directory.keep_published_name_and_website(partner)
    for name, value in changes.items():
        setattr(partner, name, list(value) if name == "languages" else value)
    after = audit.snapshot(partner, PROFILE_FIELDS)
    if after != before:
        partner.updated_at = ctx.now
        if (before["company"], before["website"]) != (after["company"], after["website"]):
            await directory.submit_name_and_website(session, partner, ctx.now)  # R18: the directory waits
        await _flush_unique(session, partner.contact_email)
        await record_identifiers(session, partner, ctx.now)
        audit.record(
            session,
            ctx,
            action="partner.updated",
            object_type="partner",
            object_id=partner.id,
            before=before,
            after=after,
        )
    return partner


async def change_status(
    session: AsyncSession,
    ctx: Context,
    partner_id: uuid.UUID,
    action: StatusAction,
    reason: str,
) -> Partner:
    """Approve, suspend, reinstate or terminate a partner, keeping the change in its history."""
    partner = await repo.get(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    current = PartnerStatus(partner.status)
    target = next_status(current, action)
    if target is None:
        raise InvalidTransition(
            f"A partner that is {current.value} cannot be {action.past_tense}.",
            code="invalid_status_transition",
            partner_status=current.value,
        )
    before = audit.snapshot(partner, ("status",))
    # Read under the row lock: a change decided after another one never dates itself before it.
    history = await repo.status_history(session, partner.id)
    effective_at = max([ctx.now, *(h.effective_at for h in history[-1:])])
    partner.status = target
    partner.updated_at = ctx.now
    session.add(
        PartnerStatusChange(
            partner_id=partner.id,
            from_status=current,
            to_status=target,
            effective_at=effective_at,
            reason=reason,
            actor=ctx.actor,
        )
    )
    if target == PartnerStatus.TERMINATED:  # R04: a terminated partner loses its relationships
        await customers_repo.end_relationships(session, partner.id, ctx.now)
        await people_repo.revoke_sessions(  # and its users are signed out for good
            session, await people_repo.user_ids_of_partner(session, partner.id), ctx.now, "partner terminated"
        )
    # R04: a suspended or terminated partner's open lead offers pass on, as a reaction after commit
    # (app/worker/reactions.py); `leads.accept` refuses them meanwhile.
    await session.flush()
    audit.record(
        session,
        ctx,
        action=f"partner.{action.value}",
        object_type="partner",
        object_id=partner.id,
        before=before,
        after={"status": target.value, "reason": reason},
    )
    status_events: dict[StatusAction, events.EventType] = {
        StatusAction.APPROVE: "partner.approved",
        StatusAction.SUSPEND: "partner.suspended",
        StatusAction.REINSTATE: "partner.reinstated",
        StatusAction.TERMINATE: "partner.terminated",
    }
    events.record(
        session,
        status_events[action],
        events.PartnerStatusChanged(
            partner_id=partner.id, from_status=current.value, to_status=target.value, reason=reason, by=ctx.actor
        ),
        occurred_at=effective_at,
        recorded_at=ctx.now,
        partner_id=partner.id,
        subject=f"partner:{partner.id}",
    )
    return partner


async def status_history(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[PartnerStatusChange]:
    """Every status the partner has had, oldest first."""
    await get(session, partner_id)
    return await repo.status_history(session, partner_id)


@dataclass(frozen=True)
class Standing:
    at: datetime
    status: PartnerStatus | None
    agreement: AgreementBinding

    @property
    def eligible(self) -> bool:
        """R04: registered, active and bound by the agreement at that moment."""
        return self.status == PartnerStatus.ACTIVE and self.agreement.bound


async def standing_at(session: AsyncSession, partner_id: uuid.UUID, at: datetime, *, known: bool = False) -> Standing:
    """Was the partner registered, active and bound by the agreement at `at`? `known`: the caller
    has the partner from a row that references it, so it is not looked up again."""
    if not known:
        await get(session, partner_id)
    return standing_from(await repo.standing_facts(session, partner_id), at)


def standing_from(facts: repo.StandingFacts, at: datetime) -> Standing:
    """`standing_at`, from the partner's standing facts."""
    status = status_at([StatusPeriod(PartnerStatus(to), since) for to, since in facts.statuses], at)
    binding = agreement_binding_at(
        [AgreementVersionView(*v) for v in facts.versions],
        [Acceptance(version_id, accepted_at) for version_id, accepted_at in facts.acceptances],
        at,
    )
    return Standing(at, status, binding)


def refuse_writes(partner: Partner) -> None:
    """A suspended partner must not act or widen its access while suspended; a terminated one never
    again. Its key still reads, and still revokes its own keys (which only narrows access)."""
    if partner.status == PartnerStatus.SUSPENDED:
        raise Forbidden(
            "A suspended partner cannot change anything until it is reinstated; its key still reads.",
            code="partner_suspended",
        )
    if partner.status == PartnerStatus.TERMINATED:
        raise Forbidden(
            "A terminated partner can no longer change anything; its key still reads.", code="partner_terminated"
        )


async def may_write(session: AsyncSession, partner_id: uuid.UUID) -> None:
    """Refuse a write made with the partner's own key while it is suspended or terminated."""
    refuse_writes(await get(session, partner_id))


async def issue_key(session: AsyncSession, ctx: Context, partner_id: uuid.UUID, *, name: str) -> api_keys.IssuedKey:
    """Another key for the partner; a suspended or terminated partner gets none."""
    refuse_writes(await get(session, partner_id))
    return await api_keys.issue(session, ctx, kind="partner", name=name, partner_id=partner_id)


async def rotate_key(
    session: AsyncSession, ctx: Context, partner_id: uuid.UUID, key_id: uuid.UUID
) -> api_keys.IssuedKey:
    """Replace one of the partner's keys; a suspended or terminated partner gets no new key."""
    refuse_writes(await get(session, partner_id))
    return await api_keys.rotate(session, ctx, key_id, partner_id=partner_id)
