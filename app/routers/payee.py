"""Payee details of a partner, and the self-billing agreement: its versions and partners' acceptances."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.domain import payee, self_billing
from app.errors import problem_responses
from app.routers.deps import (
    AdminReadOrPartner,
    AdminWrite,
    ClockDep,
    PartnerOrAdminRead,
    PartnerOrAdminWrite,
    SessionDep,
    SettingsDep,
    context,
)
from app.routers.fields import PartnerPath
from app.routers.schemas.payee import (
    NotPayableReason,
    PayeeDetails,
    PayeeDetailsRequest,
    SelfBillingAcceptance,
    SelfBillingAcceptanceList,
    SelfBillingAcceptanceRequest,
    SelfBillingAgreement,
    SelfBillingAgreementList,
    SelfBillingPublication,
)

router = APIRouter(prefix="/v1", tags=["payee details"])
AUTH_ERRORS = (401, 403, 404)


def _payee(found: payee.Payee) -> PayeeDetails:
    row = found.details
    return PayeeDetails(
        partner_id=row.partner_id,
        legal_name=row.legal_name,
        address_line1=row.address_line1,
        address_line2=row.address_line2,
        postal_code=row.postal_code,
        city=row.city,
        country=row.country,
        iban_masked=row.iban_masked,
        bic=found.bic,
        vat_id=row.vat_id,
        vat_registered=row.vat_registered,
        updated_at=row.recorded_at,
        updated_by=row.recorded_by,
        bank_details_changed_at=row.bank_changed_at,
        payouts_held_until=found.payouts_held_until,
        payouts_held_because=found.held_because,
        payable=found.payability.payable,
        not_payable_because=[
            NotPayableReason(code=reason.value, detail=detail) for reason, detail in found.payability.reasons
        ],
    )


def _agreement(row: object) -> SelfBillingAgreement:
    return SelfBillingAgreement.model_validate(row, from_attributes=True)


@router.get(
    "/partners/{partner_id}/payee-details",
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="A partner's payee details",
)
async def get_payee_details(
    partner_id: PartnerPath, session: SessionDep, clock: ClockDep, settings: SettingsDep, _caller: PartnerOrAdminRead
) -> PayeeDetails:
    """The partner itself, or an admin (read). The IBAN is answered masked; the answer says whether
    payouts are held, until when and why, and whether the partner could be paid now. 404
    `payee_details_not_found` until they are given."""
    return _payee(await payee.get(session, settings, partner_id, clock.now()))


@router.put(
    "/partners/{partner_id}/payee-details",
    responses={
        201: {"model": PayeeDetails, "description": "The first payee details of the partner"},
        **problem_responses(*AUTH_ERRORS, 422),
    },
    summary="Give a partner's payee details",
)
async def put_payee_details(
    partner_id: PartnerPath,
    body: PayeeDetailsRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    caller: PartnerOrAdminWrite,
) -> PayeeDetails:
    """The partner itself, or an admin (write). Every field, the IBAN included, each time: the same
    details again change nothing. A change of the IBAN or the BIC (the first ones too) holds the
    partner's payouts for PARTNERS_PAYOUT_HOLD_DAYS days (`payouts_held_until`). Every change is
    audited and told as a `payee.changed` event, which never carries the IBAN."""
    found, outcome = await payee.put(
        session,
        context(request, caller, clock),
        settings,
        partner_id,
        payee.PayeeInput(**body.model_dump()),
    )
    if outcome == "created":
        response.status_code = status.HTTP_201_CREATED
    return _payee(found)


@router.get(
    "/self-billing-agreements",
    tags=["self-billing"],
    responses=problem_responses(401, 403, 422),
    summary="List self-billing agreement versions",
)
async def list_self_billing_agreements(session: SessionDep, _caller: AdminReadOrPartner) -> SelfBillingAgreementList:
    """Any partner, or an admin (read). Every published version, oldest first."""
    return SelfBillingAgreementList(items=[_agreement(v) for v in await self_billing.versions(session)])


@router.get(
    "/self-billing-agreements/current",
    tags=["self-billing"],
    responses=problem_responses(401, 403, 404, 422),
    summary="The self-billing agreement in force",
)
async def get_current_self_billing_agreement(
    session: SessionDep, clock: ClockDep, _caller: AdminReadOrPartner
) -> SelfBillingAgreement:
    """Any partner, or an admin (read). The version a partner accepts to be payable."""
    return _agreement(await self_billing.current(session, clock.now()))


@router.post(
    "/self-billing-agreements",
    status_code=status.HTTP_201_CREATED,
    tags=["self-billing"],
    responses=problem_responses(401, 403, 409, 422),
    summary="Publish a self-billing agreement version",
)
async def publish_self_billing_agreement(
    body: SelfBillingPublication, request: Request, session: SessionDep, clock: ClockDep, admin: AdminWrite
) -> SelfBillingAgreement:
    """Admin (write). In force at once: from now on a partner is payable only once it accepted it."""
    row = await self_billing.publish(
        session,
        context(request, admin, clock),
        version=body.version,
        title=body.title,
        url=str(body.url) if body.url else None,
    )
    return _agreement(row)


@router.get(
    "/partners/{partner_id}/self-billing-acceptances",
    tags=["self-billing"],
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="A partner's self-billing agreement acceptances",
)
async def list_self_billing_acceptances(
    partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> SelfBillingAcceptanceList:
    """The partner itself, or an admin (read). Every version the partner accepted, with when and by whom."""
    return SelfBillingAcceptanceList(
        items=[
            SelfBillingAcceptance(version=name, accepted_at=row.accepted_at, accepted_by=row.accepted_by)
            for row, name in await self_billing.acceptances(session, partner_id)
        ]
    )


@router.post(
    "/partners/{partner_id}/self-billing-acceptances",
    status_code=status.HTTP_201_CREATED,
    tags=["self-billing"],
    responses={
        200: {"model": SelfBillingAcceptance, "description": "Already accepted earlier"},
        **problem_responses(*AUTH_ERRORS, 409, 422),
    },
    summary="Accept the self-billing agreement",
)
async def accept_self_billing_agreement(
    partner_id: PartnerPath,
    body: SelfBillingAcceptanceRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerOrAdminWrite,
) -> SelfBillingAcceptance:
    """The partner itself, or an admin (write) recording the partner's acceptance. Only the version in
    force is accepted (409 `self_billing_version_not_current`); accepting it twice keeps the first
    date (200). Told as a `payee.changed` event."""
    row, created = await self_billing.accept(session, context(request, caller, clock), partner_id, body.version)
    if not created:
        response.status_code = status.HTTP_200_OK
    return SelfBillingAcceptance(version=body.version, accepted_at=row.accepted_at, accepted_by=row.accepted_by)
