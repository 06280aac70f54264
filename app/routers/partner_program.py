"""A partner's registrations, status, ledgers, level history and customers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from app.db import tables
from app.domain import registrations
from app.domain import status as status_domain
from app.domain.registrations import Prospect, days_left, effective_state
from app.errors import problem_responses
from app.routers import convert
from app.routers.deps import ClockDep, PartnerOrAdminRead, PartnerSelf, SessionDep, context
from app.routers.fields import Cursor, PartnerPath, RegistrationPath, UtcDatetime, page_size
from app.routers.links import link, links
from app.routers.schemas.customers import Registration, RegistrationList, RegistrationRequest, RegistrationStateName
from app.routers.schemas.ledgers import (
    LevelChange,
    LevelChangeList,
    MoneyEntry,
    MoneyEntryPage,
    PartnerStatus,
    PointsEntry,
    PointsEntryPage,
    Relationship,
    RelationshipList,
)

router = APIRouter(prefix="/v1/partners/{partner_id}", tags=["partner program"])
READ_ERRORS = (401, 403, 404, 422)


def _registration(row: tables.Registration, now: datetime) -> Registration:
    return Registration(
        **{name: getattr(row, name) for name in Registration.model_fields if hasattr(row, name)}
        | {"state": effective_state(row, now), "days_left": days_left(row, now)}
    )


@router.post(
    "/registrations",
    status_code=status.HTTP_201_CREATED,
    responses={
        **problem_responses(401, 403, 404, 409, 422),
        **links(
            201,
            get_registration=link(
                "get_registration", partner_id="$request.path.partner_id", registration_id="$response.body#/id"
            ),
            withdraw_registration=link(
                "withdraw_registration", partner_id="$request.path.partner_id", registration_id="$response.body#/id"
            ),
            get_customer=link("get_customer", customer_id="$response.body#/customer_id"),
        ),
    },
    summary="Register a prospective customer",
)
async def create_registration(
    partner_id: PartnerPath,
    body: RegistrationRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerSelf,
) -> Registration:
    """The partner's own key. R05-R07: needs a strong identifier (422 names what is missing);
    refused with 409 and a `code` when the customer already bought, is registered by another
    partner, is in an active sales process, or is in cool-off after your expired registration."""
    ctx = context(request, caller, clock)
    row = await registrations.register(session, ctx, partner_id, prospect_of(body))
    return _registration(row, ctx.now)


def prospect_of(body: RegistrationRequest) -> Prospect:
    """The customer a registration request names, as the registration rules read it (the API's and
    the portal's form alike)."""
    return Prospect(
        company=body.company,
        country=body.country,
        contact_name=body.contact_name,
        contact_email=str(body.contact_email),
        vat_id=body.vat_id,
        domain=body.domain,
        store_customer_id=body.store_customer_id,
    )


@router.get("/registrations", responses=problem_responses(*READ_ERRORS), summary="List registrations")
async def list_registrations(
    partner_id: PartnerPath,
    session: SessionDep,
    clock: ClockDep,
    _caller: PartnerOrAdminRead,
    state: Annotated[
        list[RegistrationStateName] | None,
        Query(description="Only the registrations in one of these states (repeat the parameter for several)."),
    ] = None,
) -> RegistrationList:
    """The partner itself or an admin (read). Newest first, with the days left in each window."""
    now = clock.now()
    rows = await registrations.for_partner(session, partner_id, states=state, now=now)
    return RegistrationList(items=[_registration(r, now) for r in rows])


@router.get(
    "/registrations/{registration_id}", responses=problem_responses(*READ_ERRORS), summary="Read a registration"
)
async def get_registration(
    partner_id: PartnerPath,
    registration_id: RegistrationPath,
    session: SessionDep,
    clock: ClockDep,
    _caller: PartnerOrAdminRead,
) -> Registration:
    """The partner itself or an admin (read). Another partner's registration is 404
    `registration_not_found`, as if it did not exist."""
    return _registration(await registrations.get(session, partner_id, registration_id), clock.now())


@router.post(
    "/registrations/{registration_id}/withdraw",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Withdraw a registration",
)
async def withdraw_registration(
    partner_id: PartnerPath,
    registration_id: RegistrationPath,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerSelf,
) -> Registration:
    """The partner's own key. The customer is free for other partners at once."""
    ctx = context(request, caller, clock)
    row = await registrations.withdraw(session, ctx, partner_id, registration_id)
    return _registration(row, ctx.now)


@router.get("/status", responses=problem_responses(*READ_ERRORS), summary="A partner's program status")
async def get_partner_program_status(
    partner_id: PartnerPath,
    session: SessionDep,
    clock: ClockDep,
    _caller: PartnerOrAdminRead,
    as_of: Annotated[UtcDatetime | None, Query(description="As the ledgers stood then (default: now).")] = None,
) -> PartnerStatus:
    """Level, active points, points to the next level, rates, points at risk and commission balances;
    with `as_of`, derived from the entries effective up to that moment."""
    result = await status_domain.status(session, partner_id, clock.now(), as_of)
    return PartnerStatus(**result.__dict__)


@router.get("/points-entries", responses=problem_responses(*READ_ERRORS), summary="Points ledger")
async def list_points_entries(
    partner_id: PartnerPath,
    session: SessionDep,
    _caller: PartnerOrAdminRead,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(500)] = 100,
) -> PointsEntryPage:
    """Newest first; each entry names its rule, order line and terms version (R21)."""
    rows = await status_domain.points_entries(
        session, partner_id, before_id=convert.decode_int_cursor(cursor), limit=limit + 1
    )
    return PointsEntryPage(**convert.id_page(rows, limit, PointsEntry))


@router.get("/money-entries", responses=problem_responses(*READ_ERRORS), summary="Commission ledger")
async def list_money_entries(
    partner_id: PartnerPath,
    session: SessionDep,
    _caller: PartnerOrAdminRead,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(500)] = 100,
) -> MoneyEntryPage:
    """Newest first; amounts in minor units of each entry's currency (R15, R21)."""
    rows = await status_domain.money_entries(
        session, partner_id, before_id=convert.decode_int_cursor(cursor), limit=limit + 1
    )
    return MoneyEntryPage(**convert.id_page(rows, limit, MoneyEntry))


@router.get("/level-history", responses=problem_responses(*READ_ERRORS), summary="Level changes")
async def list_level_changes(
    partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> LevelChangeList:
    """Every change of level, oldest first, with the entry that caused it (R03)."""
    rows = await status_domain.level_history(session, partner_id)
    return LevelChangeList(items=[LevelChange.model_validate(r, from_attributes=True) for r in rows])


@router.get("/relationships", responses=problem_responses(*READ_ERRORS), summary="Established customers")
async def list_relationships(
    partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> RelationshipList:
    """Customers whose first qualifying order established a relationship (R08)."""
    return RelationshipList(
        items=[
            Relationship(
                customer_id=r.customer_id,
                company=company,
                mode=r.mode,
                first_order_at=r.first_order_at,
                established_by_order_id=r.established_by_order_id,
                resale_since=r.resale_since,
                ended_at=r.ended_at,
            )
            for r, company in await status_domain.relationships(session, partner_id)
        ]
    )
