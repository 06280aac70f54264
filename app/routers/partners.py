"""Partners: public registration, admin management, the partner's own profile and keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import unit_of_work
from app.domain import agreements, api_keys, partners, program
from app.domain.context import Context
from app.domain.rules.partner_status import StatusAction
from app.errors import problem_responses
from app.routers import convert
from app.routers.deps import (
    AdminRead,
    AdminWrite,
    ClockDep,
    PartnerOrAdminRead,
    PartnerOrAdminRevoke,
    PartnerOrAdminWrite,
    PartnerSelf,
    SessionDep,
    SettingsDep,
    context,
    public_context,
)
from app.routers.fields import (
    CountryCode,
    Cursor,
    IncludeRevoked,
    KeyPath,
    PartnerPath,
    SearchText,
    UtcDatetime,
    page_size,
)
from app.routers.links import link, links
from app.routers.schemas.agreements import AcceptanceRequest, AgreementAcceptance, AgreementAcceptanceList
from app.routers.schemas.common import PartnerStatusName
from app.routers.schemas.keys import ApiKey, ApiKeyList, IssuedApiKey, PartnerKeyRequest
from app.routers.schemas.partners import (
    DeclaredIdentifier,
    DeclaredIdentifierList,
    Partner,
    PartnerPage,
    PartnerProfileUpdate,
    PartnerRegistration,
    RegisteredPartner,
    Standing,
    StatusChange,
    StatusChangeList,
    StatusChangeRequest,
)
from app.settings import Settings

router = APIRouter(prefix="/v1/partners", tags=["partners"])

# The partner list's filters: the list and its CSV export take the same ones.
StatusFilter = Annotated[PartnerStatusName | None, Query(description="Only the partners in this status.")]
CountryFilter = Annotated[CountryCode | None, Query(description="Only the partners registered in this country.")]
PartnerSearch = Annotated[SearchText | None, Query(description="Matches company, contact, e-mail or website.")]
CreatedFrom = Annotated[UtcDatetime | None, Query(description="Only the partners registered at or after this time.")]
CreatedTo = Annotated[
    UtcDatetime | None, Query(description="Only the partners registered before this time (exclusive).")
]
AUTH_ERRORS = (401, 403, 404)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        **problem_responses(409, 422, 429),
        **links(
            201,
            get_partner=link("get_partner", partner_id="$response.body#/partner/id"),
            update_partner=link("update_partner", partner_id="$response.body#/partner/id"),
            approve_partner=link("approve_partner", partner_id="$response.body#/partner/id"),
            get_partner_standing=link("get_partner_standing", partner_id="$response.body#/partner/id"),
            list_partner_api_keys=link("list_partner_api_keys", partner_id="$response.body#/partner/id"),
            revoke_partner_api_key=link(
                "revoke_partner_api_key", partner_id="$response.body#/partner/id", key_id="$response.body#/api_key/id"
            ),
        ),
    },
    summary="Register a partner",
)
async def register_partner(
    body: PartnerRegistration,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> RegisteredPartner:
    """Public. Creates the partner, records its acceptance of the agreement and returns its first
    API key, which is shown this once. Limited per client address (429 with Retry-After)."""
    done = await register_counted(request, session, public_context(request, clock), settings, body)
    response.headers["Location"] = f"/v1/partners/{done.partner.id}"
    return RegisteredPartner(
        partner=convert.partner(done.partner),
        api_key=convert.issued_key(done.key.key, done.key.plaintext),
    )


async def register_counted(
    request: Request, session: AsyncSession, ctx: Context, settings: Settings, body: PartnerRegistration
) -> partners.Registered:
    """The registration of `POST /v1/partners` and of the application page: the attempt counted per
    client address first, committed on its own so that attempts the domain refuses count too (bodies
    that fail validation never reach here and cost nothing), then the partner registered."""
    client = request.client.host if request.client else "unknown"
    async with unit_of_work(
        request.app.state.session_factory, purpose="registration rate count: kept even when the registration fails"
    ) as counter:
        await program.take_token(
            counter,
            scope="registration",
            client=client,
            now=ctx.now,
            limit=settings.registration_rate_limit,
            window_seconds=settings.registration_rate_window_seconds,
        )
    return await partners.register(
        session,
        ctx,
        company=body.company,
        country=body.country,
        contact_name=body.contact_name,
        contact_email=str(body.contact_email),
        website=str(body.website) if body.website else None,
        vat_id=body.vat_id,
        languages=body.languages,
        agreement_version=body.accepted_agreement_version,
    )


@router.get("", responses=problem_responses(401, 403, 422), summary="List and search partners")
async def list_partners(
    session: SessionDep,
    _admin: AdminRead,
    status: StatusFilter = None,
    country: CountryFilter = None,
    q: PartnerSearch = None,
    created_from: CreatedFrom = None,
    created_to: CreatedTo = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> PartnerPage:
    """Admin (read). Newest first; filters combine."""
    rows = await partners.search(
        session,
        status=status,
        country=country,
        q=q or None,
        created_from=created_from,
        created_to=created_to,
        after=convert.decode_time_id_cursor(cursor),
        limit=limit + 1,
    )
    page = rows[:limit]
    next_cursor = convert.encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
    return PartnerPage(
        items=[convert.partner(p) for p in page], next_cursor=next_cursor, has_more=next_cursor is not None
    )


@router.get(
    "/{partner_id}",
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="Read a partner",
)
async def get_partner(partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead) -> Partner:
    """The partner itself, or an admin (read)."""
    return convert.partner(await partners.get(session, partner_id))


@router.patch(
    "/{partner_id}",
    responses=problem_responses(*AUTH_ERRORS, 409, 422),
    summary="Update a partner's profile",
)
async def update_partner(
    partner_id: PartnerPath,
    body: PartnerProfileUpdate,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerOrAdminWrite,
) -> Partner:
    """The partner itself, or an admin (write). Only the fields sent change."""
    changes = body.model_dump(exclude_unset=True)
    if "website" in changes and changes["website"] is not None:
        changes["website"] = str(body.website)
    if "contact_email" in changes and changes["contact_email"] is not None:
        changes["contact_email"] = str(body.contact_email)
    row = await partners.update_profile(session, context(request, caller, clock), partner_id, changes)
    return convert.partner(row)


def _status_route(action: StatusAction) -> None:
    async def endpoint(
        partner_id: PartnerPath,
        body: StatusChangeRequest,
        request: Request,
        session: SessionDep,
        clock: ClockDep,
        admin: AdminWrite,
    ) -> Partner:
        row = await partners.change_status(session, context(request, admin, clock), partner_id, action, body.reason)
        return convert.partner(row)

    endpoint.__name__ = f"{action.value}_partner"
    endpoint.__doc__ = f"Admin (write). The partner is {action.past_tense}; the reason is kept in its history."
    router.add_api_route(
        f"/{{partner_id}}/{action.value}",
        endpoint,
        methods=["POST"],
        responses=problem_responses(401, 403, 404, 409, 422),
        summary=f"{action.value.capitalize()} a partner",
    )


for _action in StatusAction:
    _status_route(_action)


@router.get(
    "/{partner_id}/status-history",
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="A partner's status history",
)
async def get_partner_status_history(
    partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> StatusChangeList:
    """Every status the partner has had, oldest first."""
    rows = await partners.status_history(session, partner_id)
    return StatusChangeList(items=[StatusChange.model_validate(r, from_attributes=True) for r in rows])


@router.get(
    "/{partner_id}/identifiers",
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="Identifiers of the partner's own company",
)
async def get_partner_identifiers(
    partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> DeclaredIdentifierList:
    """R22: every identifier of its own company the partner declared (VAT id, website and contact
    e-mail domains), oldest first, with when it held it. None of them is ever its customer, a
    withdrawn one included: registrations, quotes and orders check them all."""
    rows = await partners.identifier_history(session, partner_id)
    return DeclaredIdentifierList(items=[DeclaredIdentifier.model_validate(r, from_attributes=True) for r in rows])


@router.get(
    "/{partner_id}/standing",
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="Was the partner eligible at a moment",
)
async def get_partner_standing(
    partner_id: PartnerPath,
    session: SessionDep,
    clock: ClockDep,
    _caller: PartnerOrAdminRead,
    at: Annotated[
        UtcDatetime | None, Query(description="The moment to judge the partner's eligibility at (R04; default: now).")
    ] = None,
) -> Standing:
    """R04: the partner's status and agreement binding at `at`, from their dated history."""
    result = await partners.standing_at(session, partner_id, at or clock.now())
    return Standing(
        at=result.at,
        status=result.status.value if result.status else None,
        agreement_bound=result.agreement.bound,
        required_agreement_version=result.agreement.required_version,
        accepted_agreement_version=result.agreement.accepted_version,
        eligible=result.eligible,
    )


@router.get(
    "/{partner_id}/agreement-acceptances",
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="A partner's agreement acceptances",
)
async def list_agreement_acceptances(
    partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> AgreementAcceptanceList:
    """Every version the partner accepted, with when."""
    await partners.get(session, partner_id)
    return AgreementAcceptanceList(
        items=[
            AgreementAcceptance(version=name, accepted_at=row.accepted_at)
            for row, name in await agreements.acceptances(session, partner_id)
        ]
    )


@router.post(
    "/{partner_id}/agreement-acceptances",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "model": AgreementAcceptance,
            "description": "Already accepted earlier",
        },
        **problem_responses(*AUTH_ERRORS, 409, 422),
    },
    summary="Accept an agreement version",
)
async def accept_agreement(
    partner_id: PartnerPath,
    body: AcceptanceRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerSelf,
) -> AgreementAcceptance:
    """The partner's own key only. Accepting a version twice keeps the first date (200)."""
    row, created = await agreements.accept(session, context(request, caller, clock), partner_id, body.version)
    if not created:
        response.status_code = status.HTTP_200_OK
    return AgreementAcceptance(version=body.version, accepted_at=row.accepted_at)


# --- the partner's keys ---------------------------------------------------------------------


@router.get(
    "/{partner_id}/api-keys",
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="List a partner's keys",
)
async def list_partner_api_keys(
    partner_id: PartnerPath,
    session: SessionDep,
    _caller: PartnerOrAdminRead,
    include_revoked: IncludeRevoked = False,
) -> ApiKeyList:
    """Prefix, name, created and last used; never the key itself."""
    await partners.get(session, partner_id)
    rows = await api_keys.listing(
        session,
        kinds=["partner"],
        partner_id=partner_id,
        include_revoked=include_revoked,
    )
    return ApiKeyList(items=[convert.api_key(r) for r in rows])


@router.post(
    "/{partner_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    responses={
        **problem_responses(*AUTH_ERRORS, 409, 422),
        **links(
            201,
            rotate_partner_api_key=link(
                "rotate_partner_api_key", partner_id="$request.path.partner_id", key_id="$response.body#/id"
            ),
            revoke_partner_api_key=link(
                "revoke_partner_api_key", partner_id="$request.path.partner_id", key_id="$response.body#/id"
            ),
        ),
    },
    summary="Create a partner key",
)
async def create_partner_api_key(
    partner_id: PartnerPath,
    body: PartnerKeyRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerSelf,
) -> IssuedApiKey:
    """The partner's own key only. The new key is shown this once."""
    issued = await partners.issue_key(session, context(request, caller, clock), partner_id, name=body.name)
    return convert.issued_key(issued.key, issued.plaintext)


@router.post(
    "/{partner_id}/api-keys/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*AUTH_ERRORS, 409, 422),
    summary="Rotate a partner key",
)
async def rotate_partner_api_key(
    partner_id: PartnerPath,
    key_id: KeyPath,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerSelf,
) -> IssuedApiKey:
    """The partner's own key only. Revokes the key and returns its replacement, shown this once."""
    issued = await partners.rotate_key(session, context(request, caller, clock), partner_id, key_id)
    return convert.issued_key(issued.key, issued.plaintext)


@router.delete(
    "/{partner_id}/api-keys/{key_id}",
    responses=problem_responses(*AUTH_ERRORS, 422),
    summary="Revoke a partner key",
)
async def revoke_partner_api_key(
    partner_id: PartnerPath,
    key_id: KeyPath,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerOrAdminRevoke,
) -> ApiKey:
    """The partner itself (suspended or terminated too: revoking only narrows access), or an admin
    (write). Revoking twice changes nothing."""
    row = await api_keys.revoke(
        session,
        context(request, caller, clock),
        key_id,
        kinds=["partner"],
        partner_id=partner_id,
    )
    return convert.api_key(row)
