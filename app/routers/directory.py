"""The public partner directory (R18, R20) and not-for-resale licences (R17)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, status
from fastapi.responses import Response

from app.domain import directory
from app.domain.rules.terms import Level
from app.errors import problem_responses
from app.routers.deps import (
    AdminRead,
    AdminWrite,
    ClockDep,
    PartnerOrAdminRead,
    PartnerOrAdminWrite,
    PartnerSelf,
    SessionDep,
    context,
)
from app.routers.fields import CountryCode, LanguageCode, PartnerPath, SearchText
from app.routers.links import link, links
from app.routers.schemas.directory import (
    DirectoryEntry,
    DirectoryPage,
    DirectoryProfileUpdate,
    NfrLicenceList,
    NfrLicenceOut,
    NfrRequest,
    NfrViolationList,
    NfrViolationOut,
)
from app.routers.schemas.partners import Partner, StatusChangeRequest

router = APIRouter(prefix="/v1", tags=["directory"])


@router.get(
    "/directory",
    response_model=DirectoryPage,
    responses={304: {"description": "Not modified since the ETag sent in If-None-Match"}, **problem_responses(422)},
    summary="The public partner directory",
)
async def list_directory(
    session: SessionDep,
    country: Annotated[CountryCode | None, Query(description="Only the partners registered in this country.")] = None,
    region: Annotated[
        SearchText | None, Query(description="Part of the partner's region or of a region it serves.")
    ] = None,
    level: Annotated[Level | None, Query(description="Only the partners at this level now.")] = None,
    language: Annotated[
        LanguageCode | None, Query(description="Only the partners whose profile lists this language.")
    ] = None,
    q: Annotated[SearchText | None, Query(description="Part of the name, description or services.")] = None,
    page: Annotated[int, Query(ge=1, le=10_000, description="Which page of `per_page` entries to give, from 1.")] = 1,
    per_page: Annotated[
        int, Query(ge=1, le=100, description="How many entries one page holds at most (1 to 100).")
    ] = 20,
    if_none_match: Annotated[
        str | None,
        Header(
            max_length=1000,
            description="ETags of pages already held, comma-separated; 304 without a body when one still matches.",
        ),
    ] = None,
) -> Any:
    """Public, no key. Active partners that did not opt out: Platinum, Gold, Silver, Affiliate, then
    by name; only public fields. Answers carry an ETag with `Cache-Control: no-cache`, so a
    suspended partner disappears at the next revalidation; a matching If-None-Match gets 304."""
    rows = await directory.listed(
        session,
        country=country,
        region=region or None,
        level=level,
        language=language,
        q=q or None,
        offset=(page - 1) * per_page,
        limit=per_page + 1,  # one more, to tell whether another page follows
    )
    body = DirectoryPage(
        items=[DirectoryEntry.model_validate(p, from_attributes=True) for p in rows[:per_page]],
        page=page,
        per_page=per_page,
        has_more=len(rows) > per_page,
    )
    payload = body.model_dump_json().encode()  # pydantic's own encoder: one pass, no dict in between
    etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    sent = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")} if if_none_match else set()
    if etag in sent or "*" in sent:  # `*`: any current representation (RFC 9110, 13.1.2); the page exists
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(payload, media_type="application/json", headers=headers)


@router.patch(
    "/partners/{partner_id}/directory-profile",
    tags=["partners"],
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Edit the directory profile",
)
async def update_directory_profile(
    partner_id: PartnerPath,
    body: DirectoryProfileUpdate,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerOrAdminWrite,
) -> Partner:
    """The partner itself or an admin (write). R20: text that spells the vendor's name other than
    "Qalyptus" is refused with 422 naming the spelling found."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("website") is not None:
        changes["website"] = str(body.website)
    row = await directory.update_profile(session, context(request, caller, clock), partner_id, changes)
    return Partner.model_validate(row, from_attributes=True)


@router.post(
    "/partners/{partner_id}/nfr-licences",
    status_code=status.HTTP_201_CREATED,
    tags=["nfr licences"],
    responses={
        **problem_responses(401, 403, 404, 409, 422),
        **links(201, revoke_nfr_licence=link("revoke_nfr_licence", nfr_id="$response.body#/id")),
    },
    summary="Take a not-for-resale licence",
)
async def request_nfr_licence(
    partner_id: PartnerPath,
    body: NfrRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerSelf,
) -> NfrLicenceOut:
    """The partner's own key. R17: one free licence per product (a program term) for demonstration,
    training or evaluation, with the partner's acknowledgement that it is not for its production needs
    nor for resale (422 without it); it earns nothing and cannot be sold."""
    row = await directory.request_nfr(
        session,
        context(request, caller, clock),
        partner_id,
        body.sku,
        purpose=body.purpose,
        acknowledged=body.acknowledged,
    )
    return NfrLicenceOut.model_validate(row, from_attributes=True)


@router.get(
    "/partners/{partner_id}/nfr-licences",
    tags=["nfr licences"],
    responses=problem_responses(401, 403, 404, 422),
    summary="A partner's not-for-resale licences",
)
async def list_partner_nfr_licences(
    partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> NfrLicenceList:
    return NfrLicenceList(
        items=[
            NfrLicenceOut.model_validate(r, from_attributes=True)
            for r in await directory.nfr_licences(session, partner_id)
        ]
    )


@router.get(
    "/nfr-licences", tags=["nfr licences"], responses=problem_responses(401, 403), summary="All not-for-resale licences"
)
async def list_nfr_licences(session: SessionDep, _admin: AdminRead) -> NfrLicenceList:
    """Admin (read)."""
    return NfrLicenceList(
        items=[
            NfrLicenceOut.model_validate(r, from_attributes=True) for r in await directory.nfr_licences(session, None)
        ]
    )


@router.post(
    "/nfr-licences/{nfr_id}/revoke",
    tags=["nfr licences"],
    responses=problem_responses(401, 403, 404, 422),
    summary="Revoke a not-for-resale licence",
)
async def revoke_nfr_licence(
    nfr_id: Annotated[uuid.UUID, Path(description="The NFR licence's id (the `id` its grant answered).")],
    body: StatusChangeRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> NfrLicenceOut:
    """Admin (write), with a reason."""
    row = await directory.revoke_nfr(session, context(request, admin, clock), nfr_id, body.reason)
    return NfrLicenceOut.model_validate(row, from_attributes=True)


@router.get(
    "/nfr-violations",
    tags=["nfr licences"],
    responses=problem_responses(401, 403),
    summary="Attempts to sell NFR licences",
)
async def list_nfr_violations(session: SessionDep, _admin: AdminRead) -> NfrViolationList:
    """Admin (read). Orders and quotes that tried to sell a not-for-resale licence (R17)."""
    return NfrViolationList(
        items=[NfrViolationOut.model_validate(r, from_attributes=True) for r in await directory.violations(session)]
    )
