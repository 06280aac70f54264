"""Leads by location (R19): the vendor posts prospects; partners accept or decline offers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from app.db import tables
from app.domain import leads
from app.errors import problem_responses
from app.routers.deps import AdminRead, AdminWrite, ClockDep, PartnerOrAdminRead, PartnerSelf, SessionDep, context
from app.routers.fields import LeadPath, OfferPath, PartnerPath
from app.routers.links import link, links
from app.routers.schemas.leads import (
    LeadAssignment,
    LeadCreate,
    LeadOfferList,
    LeadOfferOut,
    LeadOut,
    OfferDecline,
    RankedPartner,
)

router = APIRouter(prefix="/v1", tags=["leads"])
OfferState = LeadOfferOut.model_fields["state"].annotation


def _offer(row: tables.LeadOffer) -> LeadOfferOut:
    return LeadOfferOut.model_validate(row, from_attributes=True)


async def _lead(session: SessionDep, lead: tables.Lead) -> LeadOut:
    return LeadOut(
        id=lead.id,
        company=lead.company,
        country=lead.country,
        region=lead.region,
        city=lead.city,
        products=lead.products,
        status=lead.status,
        created_at=lead.created_at,
        ranking=[
            RankedPartner(
                partner_id=r.candidate.partner_id,
                name=r.candidate.name,
                level=r.candidate.level,
                tier=r.tier,
                distance_km=round(r.distance_km, 1) if r.distance_km is not None else None,
                open_leads=r.candidate.open_leads,
                reason=r.reason,
            )
            for r in await leads.ranking(session, lead)
        ],
        history=[_offer(o) for o in await leads.offers(session, lead.id)],
    )


@router.post(
    "/leads",
    status_code=status.HTTP_201_CREATED,
    responses={
        **problem_responses(401, 403, 422),
        **links(
            201,
            get_lead=link("get_lead", lead_id="$response.body#/id"),
            assign_lead=link("assign_lead", lead_id="$response.body#/id"),
        ),
    },
    summary="Post an inbound prospect",
)
async def create_lead(
    body: LeadCreate, request: Request, session: SessionDep, clock: ClockDep, admin: AdminWrite
) -> LeadOut:
    """Admin (write). Answers the ranking of partners for it, with why each is where it is."""
    lead = await leads.create(
        session,
        context(request, admin, clock),
        leads.NewLead(
            company=body.company,
            country=body.country,
            contact_name=body.contact_name,
            contact_email=str(body.contact_email),
            region=body.region,
            city=body.city,
            latitude=body.latitude,
            longitude=body.longitude,
            products=tuple(body.products),
            vat_id=body.vat_id,
            domain=body.domain,
        ),
    )
    return await _lead(session, lead)


@router.get("/leads/{lead_id}", responses=problem_responses(401, 403, 404, 422), summary="Read a lead")
async def get_lead(lead_id: LeadPath, session: SessionDep, _admin: AdminRead) -> LeadOut:
    """Admin (read). Its ranking and its history of offers."""
    return await _lead(session, await leads.get(session, lead_id))


@router.post("/leads/{lead_id}/assign", responses=problem_responses(401, 403, 404, 409, 422), summary="Offer a lead")
async def assign_lead(
    lead_id: LeadPath,
    body: LeadAssignment,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> LeadOfferOut:
    """Admin (write). Creates the partner's registration for the prospect in state `offered`, unless a
    rule refuses it (409 with the reason). Without `partner_id`, the best-ranked partner not tried yet."""
    return _offer(await leads.assign(session, context(request, admin, clock), lead_id, body.partner_id))


@router.get(
    "/partners/{partner_id}/lead-offers",
    tags=["leads"],
    responses=problem_responses(401, 403, 404, 422),
    summary="Leads offered to a partner",
)
async def list_lead_offers(
    partner_id: PartnerPath,
    session: SessionDep,
    _caller: PartnerOrAdminRead,
    state: Annotated[
        list[OfferState] | None,  # type: ignore[valid-type]
        Query(description="Only the offers in one of these states (repeat the parameter for several)."),
    ] = None,
) -> LeadOfferList:
    """The partner itself or an admin (read). Newest first."""
    return LeadOfferList(items=[_offer(o) for o in await leads.partner_offers(session, partner_id, state)])


@router.post(
    "/partners/{partner_id}/lead-offers/{offer_id}/accept",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Accept a lead",
)
async def accept_lead_offer(
    partner_id: PartnerPath,
    offer_id: OfferPath,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerSelf,
) -> LeadOfferOut:
    """The partner's own key. The registration becomes live; its 60-day window starts now."""
    return _offer(await leads.accept(session, context(request, caller, clock), partner_id, offer_id))


@router.post(
    "/partners/{partner_id}/lead-offers/{offer_id}/decline",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Decline a lead",
)
async def decline_lead_offer(
    partner_id: PartnerPath,
    offer_id: OfferPath,
    body: OfferDecline,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerSelf,
) -> LeadOfferOut:
    """The partner's own key. The lead passes to the next partner in the ranking, in the same transaction."""
    return _offer(await leads.decline(session, context(request, caller, clock), partner_id, offer_id, body.reason))
