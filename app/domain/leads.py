"""Leads by location (R19): rank partners, offer the lead, pass it on when declined or expired."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import leads as repo
from app.db.repositories import partners as partners_repo
from app.db.tables import Lead, LeadOffer
from app.domain import audit, events, partners, registrations, terms
from app.domain.context import Context
from app.domain.errors import Conflict, DomainError, InvalidTransition, NotFound
from app.domain.rules.leads import Candidate, Prospect, Ranked, rank
from app.domain.rules.terms import Level


@dataclass(frozen=True)
class NewLead:
    company: str
    country: str
    contact_name: str
    contact_email: str
    region: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    products: tuple[str, ...] = ()
    vat_id: str | None = None
    domain: str | None = None


async def create(session: AsyncSession, ctx: Context, data: NewLead) -> Lead:
    """Record an inbound prospect; it is offered with `assign`."""
    lead = Lead(
        company=data.company,
        country=data.country,
        region=data.region,
        city=data.city,
        latitude=data.latitude,
        longitude=data.longitude,
        products=list(data.products),
        contact_name=data.contact_name,
        contact_email=data.contact_email,
        vat_id=data.vat_id,
        domain=data.domain,
        status="open",
        created_at=ctx.now,
        created_by=ctx.actor,
    )
    session.add(lead)
    await session.flush()
    audit.record(
        session,
        ctx,
        action="lead.created",
        object_type="lead",
        object_id=lead.id,
        after={"company": lead.company, "country": lead.country, "region": lead.region},
    )
    return lead


async def get(session: AsyncSession, lead_id: uuid.UUID, *, for_update: bool = False) -> Lead:
    lead = await repo.get(session, lead_id, for_update=for_update)
    if lead is None:
        raise NotFound(f"No lead {lead_id}.", code="lead_not_found")
    return lead


async def ranking(session: AsyncSession, lead: Lead) -> list[Ranked]:
    """Every active partner in its place for this lead, with why."""
    coordinates = (lead.latitude, lead.longitude) if lead.latitude is not None and lead.longitude is not None else None
    candidates = [
        Candidate(
            partner_id=p.id,
            name=p.company,
            country=p.country,
            regions=tuple(r.lower() for r in ([p.region] if p.region else []) + list(p.regions_served)),
            level=Level(level),
            open_leads=open_leads,
            coordinates=(p.latitude, p.longitude) if p.latitude is not None and p.longitude is not None else None,
        )
        for p, level, open_leads in await repo.candidates(session)
    ]
    return rank(Prospect(lead.country, lead.region, coordinates), candidates)


async def offers(session: AsyncSession, lead_id: uuid.UUID) -> Sequence[LeadOffer]:
    return await repo.offers(session, lead_id)


async def _offer_to(session: AsyncSession, ctx: Context, lead: Lead, ranked: Ranked) -> LeadOffer:
    """Offer the lead to one partner: an `offered` registration, unless a rule refuses it."""
    deadline = ctx.now + timedelta(days=(await terms.in_force(session, ctx.now)).terms.lead_offer_days)
    offer = LeadOffer(
        lead_id=lead.id,
        sequence=len(await repo.offers(session, lead.id)) + 1,
        partner_id=ranked.candidate.partner_id,
        state="offered",
        rank_reason=ranked.reason[:300],
        offered_at=ctx.now,
        deadline=deadline,
    )
    prospect = registrations.Prospect(
        company=lead.company,
        country=lead.country,
        contact_name=lead.contact_name,
        contact_email=lead.contact_email,
        vat_id=lead.vat_id,
        domain=lead.domain,
    )
    try:
        registration = await registrations.register(
            session, ctx, ranked.candidate.partner_id, prospect, offer_until=deadline
        )
    except DomainError as refusal:
        offer.state, offer.reason, offer.deadline, offer.ended_at = "refused", refusal.detail[:1000], None, ctx.now
        session.add(offer)
        await session.flush()
        return offer
    offer.registration_id = registration.id
    session.add(offer)
    lead.status = "offered"
    await session.flush()
    audit.record(
        session,
        ctx,
        action="lead.offered",
        object_type="lead",
        object_id=lead.id,
        after={"partner_id": str(offer.partner_id), "deadline": deadline.isoformat(), "why": offer.rank_reason},
    )
    _record(session, "lead.offered", lead, offer, ctx)
    return offer


def _record(
    session: AsyncSession, type: events.EventType, lead: Lead, offer: LeadOffer, ctx: Context, reason: str | None = None
) -> None:
    events.record(
        session,
        type,
        events.LeadOfferFacts(
            lead_id=lead.id,
            offer_id=offer.id,
            partner_id=offer.partner_id,
            registration_id=offer.registration_id,
            company=lead.company,
            country=lead.country,
            deadline=offer.deadline if offer.state == "offered" else None,
            reason=reason,
        ),
        occurred_at=ctx.now,
        partner_id=offer.partner_id,
        subject=f"lead_offer:{offer.id}",
        refs={"lead_id": lead.id},
    )


async def assign(session: AsyncSession, ctx: Context, lead_id: uuid.UUID, partner_id: uuid.UUID | None) -> LeadOffer:
    """Offer the lead to `partner_id`, or to the best-ranked partner not tried yet."""
    lead = await get(session, lead_id, for_update=True)
    history = await repo.offers(session, lead.id)
    if any(o.state in ("offered", "accepted") for o in history):
        raise InvalidTransition("The lead is offered or accepted already.", code="lead_not_open")
    ranked = await ranking(session, lead)
    if partner_id is not None:
        chosen = [r for r in ranked if r.candidate.partner_id == partner_id]
        if not chosen:
            raise InvalidTransition("That partner is not active.", code="partner_not_active")
        offer = await _offer_to(session, ctx, lead, chosen[0])
        if offer.state == "refused":
            raise Conflict(
                f"The partner cannot take this lead: {offer.reason}", code="lead_offer_refused", keep_writes=True
            )
        return offer
    passed = await _pass_on(session, ctx, lead, history)
    if passed is None:
        raise Conflict(
            "No partner could take this lead; see its history for the reasons.", code="lead_exhausted", keep_writes=True
        )
    return passed


async def _pass_on(session: AsyncSession, ctx: Context, lead: Lead, history: Sequence[LeadOffer]) -> LeadOffer | None:
    tried = {o.partner_id for o in history}
    for ranked in await ranking(session, lead):
        if ranked.candidate.partner_id in tried:
            continue
        offer = await _offer_to(session, ctx, lead, ranked)
        if offer.state == "offered":
            return offer
        tried.add(ranked.candidate.partner_id)
    lead.status = "exhausted"
    await session.flush()
    return None


async def partner_offers(
    session: AsyncSession, partner_id: uuid.UUID, states: Sequence[str] | None
) -> Sequence[LeadOffer]:
    return await repo.partner_offers(session, partner_id, states)


async def _open_offer(session: AsyncSession, partner_id: uuid.UUID, offer_id: uuid.UUID) -> LeadOffer:
    offer = await repo.offer(session, offer_id, for_update=True)
    if offer is None or offer.partner_id != partner_id:
        raise NotFound(f"No lead offer {offer_id}.", code="lead_offer_not_found")
    if offer.state != "offered":
        raise InvalidTransition(f"The offer is {offer.state}.", code="offer_not_open")
    return offer


async def accept(session: AsyncSession, ctx: Context, partner_id: uuid.UUID, offer_id: uuid.UUID) -> LeadOffer:
    """The partner takes the lead: its registration becomes live and the R07 window starts. A
    partner suspended or terminated since the offer reached it cannot take it (R04): its offers
    pass on once the worker reacts to the change."""
    # Locked: a suspension committing meanwhile is either seen here or waits for this acceptance.
    partner = await partners_repo.get(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    partners.refuse_writes(partner)
    offer = await _open_offer(session, partner_id, offer_id)
    if offer.deadline is not None and offer.deadline <= ctx.now:
        await _end(session, ctx, offer, "expired", "The deadline passed.")
        return offer  # the caller sees it expired; the lead went to the next partner
    assert offer.registration_id is not None
    await registrations.accept_offered(session, ctx, offer.registration_id)
    offer.state, offer.ended_at = "accepted", ctx.now
    lead = await get(session, offer.lead_id, for_update=True)
    lead.status = "accepted"
    await session.flush()
    audit.record(
        session,
        ctx,
        action="lead.accepted",
        object_type="lead",
        object_id=lead.id,
        after={"partner_id": str(partner_id)},
    )
    _record(session, "lead.accepted", lead, offer, ctx)
    return offer


async def decline(
    session: AsyncSession, ctx: Context, partner_id: uuid.UUID, offer_id: uuid.UUID, reason: str | None
) -> LeadOffer:
    """The partner declines: the offer is withdrawn and the lead passes to the next partner, at once."""
    offer = await _open_offer(session, partner_id, offer_id)
    await _end(session, ctx, offer, "declined", reason)
    return offer


async def _end(session: AsyncSession, ctx: Context, offer: LeadOffer, state: str, reason: str | None) -> None:
    offer.state, offer.reason, offer.ended_at = state, reason, ctx.now
    if offer.registration_id is not None:
        await registrations.withdraw_offered(session, offer.registration_id, ctx.now, reason=reason)
    lead = await get(session, offer.lead_id, for_update=True)
    if state in ("declined", "expired"):
        _record(session, "lead.declined" if state == "declined" else "lead.expired", lead, offer, ctx, reason)
    audit.record(
        session,
        ctx,
        action=f"lead.{state}",
        object_type="lead",
        object_id=lead.id,
        after={"partner_id": str(offer.partner_id), "reason": reason},
    )
    await _pass_on(session, ctx, lead, await repo.offers(session, lead.id))


async def expire_due(session: AsyncSession, ctx: Context) -> int:
    """Offers past their deadline expire and their leads pass on (R19); safe from several machines."""
    due = await repo.due_offers(session, ctx.now)
    for offer in due:
        await _end(session, ctx, offer, "expired", "The deadline passed.")
    return len(due)


async def pass_on_offers_of_inactive_partners(session: AsyncSession, ctx: Context, *, limit: int = 100) -> int:
    """R04: the open offers of a partner suspended or terminated pass to the next partner. The
    worker runs this after the status change has committed (`partners.change_status` records
    `partner.suspended` and leaves the offers to this reaction); until then `accept` refuses them.
    Safe from several workers at once: each skips the offers another one holds."""
    due = await repo.offers_of_inactive_partners(session, limit)
    for offer, status in due:
        await _end(session, ctx, offer, "withdrawn", f"The partner was {status}.")
    return len(due)


async def any_offer_of_inactive_partner(session: AsyncSession) -> bool:
    """Is there work for `pass_on_offers_of_inactive_partners`? (A read, for an idle worker.)"""
    return await repo.any_offer_of_inactive_partner(session)
