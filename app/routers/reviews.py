"""What an admin should review: flagged orders (R12, R17, R22) and directory text (R18, R20)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from app.domain import directory, order_flags, orders
from app.errors import problem_responses
from app.routers import convert
from app.routers.deps import AdminRead, AdminWrite, ClockDep, PartnerOrAdminRead, SessionDep, context
from app.routers.fields import Cursor, PartnerPath, page_size
from app.routers.schemas.common import ReasonRequest
from app.routers.schemas.directory import (
    DirectoryReview,
    DirectoryReviewKind,
    DirectoryReviewPage,
    DirectoryReviewStatus,
)
from app.routers.schemas.orders import LicenceOut, LicencePage, OrderFlag, OrderFlagKind, OrderFlagPage, ResolveRequest
from app.routers.schemas.partners import Partner

router = APIRouter(prefix="/v1")

FlagId = Annotated[int, Path(ge=1, le=2**62, description="The order flag's id, as the order flags list gives it.")]
ReviewId = Annotated[
    int, Path(ge=1, le=2**62, description="The directory review's id, as the directory reviews lists give it.")
]


def _flag(row: object) -> OrderFlag:
    return OrderFlag.model_validate(row, from_attributes=True)


@router.get(
    "/order-flags", tags=["order flags"], responses=problem_responses(401, 403, 422), summary="List order flags"
)
async def list_order_flags(
    session: SessionDep,
    _admin: AdminRead,
    kind: Annotated[OrderFlagKind | None, Query(description="Only the flags of this kind.")] = None,
    resolved: Annotated[
        bool | None, Query(description="true: only the flags resolved already; false: only those still to review.")
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> OrderFlagPage:
    """Admin (read). Every order an admin should review, newest first: `discount_mismatch` (R12),
    `nfr_resale` (R17), `own_company` (R22), `relationship_conflict` (R08: a late order within a
    partner's registration of a customer whose relationship is another's; it earned nothing, and an
    adjustment may make up for it)."""
    rows = await order_flags.search(
        session, kind=kind, resolved=resolved, before_id=convert.decode_int_cursor(cursor), limit=limit + 1
    )
    return OrderFlagPage(**convert.id_page(rows, limit, OrderFlag))


@router.get("/licences", tags=["licences"], responses=problem_responses(401, 403, 422), summary="List licences")
async def list_licences(
    session: SessionDep,
    _admin: AdminRead,
    without_term_end: Annotated[
        bool | None,
        Query(description="true: only licences without a term end (sold before the store had to give one, R23)."),
    ] = None,
    status: Annotated[
        Literal["active", "lapsed"] | None,
        Query(
            description="Only the licences in this state (R10: a licence lapses at its term end plus the grace "
            "days, or when the store reports it)."
        ),
    ] = None,
    partner_id: Annotated[
        uuid.UUID | None, Query(description="Only the licences whose points went to this partner.")
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> LicencePage:
    """Admin (read). Licences the store sold, the newest sale first. A licence without a term end never
    lapses by itself (R10): its points stand until the store reports a lapse, so it is worth a look."""
    rows = await orders.licences(
        session,
        without_term_end=without_term_end,
        status=status,
        partner_id=partner_id,
        before_line_id=convert.decode_int_cursor(cursor),
        limit=limit + 1,
    )
    page = rows[:limit]
    return LicencePage(
        items=[LicenceOut.model_validate({**_columns(row.licence), "order_id": row.order_id}) for row in page],
        next_cursor=convert.encode_cursor(page[-1].licence.order_line_id) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


def _columns(row: object) -> dict[str, Any]:
    return {name: getattr(row, name) for name in LicenceOut.model_fields if name != "order_id"}


@router.post(
    "/order-flags/{flag_id}/resolve",
    tags=["order flags"],
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Resolve an order flag",
)
async def resolve_order_flag(
    flag_id: FlagId,
    body: ResolveRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> OrderFlag:
    """Admin (write). Closes the flag with the reason (kept with who and when); 409 when resolved already.
    Nothing is re-rated: what the order earned stays as it was."""
    row = await order_flags.resolve(session, context(request, admin, clock), flag_id, reason=body.reason)
    return _flag(row)


def _review_page(rows: Sequence[Any], limit: int) -> DirectoryReviewPage:
    return DirectoryReviewPage(**convert.id_page(rows, limit, DirectoryReview))


@router.get(
    "/directory-reviews",
    tags=["directory"],
    responses=problem_responses(401, 403, 422),
    summary="The directory review queue",
)
async def list_directory_reviews(
    session: SessionDep,
    _admin: AdminRead,
    status: Annotated[DirectoryReviewStatus | None, Query(description="Only the reviews in this status.")] = None,
    kind: Annotated[
        DirectoryReviewKind | None,
        Query(description="Only the reviews of this part of the profile (R18)."),
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> DirectoryReviewPage:
    """Admin (read). R18: partner-written text waiting to be published (`kind=text`), a new company name
    or website waiting to be shown (`kind=name_and_website`), and company names registered before R20
    checked them (`kind=company_name`, until the partner changes the name); `status=pending` is the
    queue. Newest first."""
    rows = await directory.reviews(
        session,
        status=status,
        kind=kind,
        partner_id=None,
        before_id=convert.decode_int_cursor(cursor),
        limit=limit + 1,
    )
    return _review_page(rows, limit)


@router.post(
    "/directory-reviews/{review_id}/approve",
    tags=["directory"],
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Approve directory text",
)
async def approve_directory_review(
    review_id: ReviewId, request: Request, session: SessionDep, clock: ClockDep, admin: AdminWrite
) -> DirectoryReview:
    """Admin (write). R18: the directory shows this text, or this company name and website, from now
    on; 409 when no longer pending or for a company name that misspells the brand (the partner
    corrects it)."""
    row = await directory.approve_review(session, context(request, admin, clock), review_id)
    return DirectoryReview.model_validate(row, from_attributes=True)


@router.post(
    "/directory-reviews/{review_id}/reject",
    tags=["directory"],
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Reject directory text",
)
async def reject_directory_review(
    review_id: ReviewId,
    body: ReasonRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> DirectoryReview:
    """Admin (write). R18: the reason goes to the partner; the directory keeps the last approved text,
    or name and website."""
    row = await directory.reject_review(session, context(request, admin, clock), review_id, reason=body.reason)
    return DirectoryReview.model_validate(row, from_attributes=True)


@router.get(
    "/partners/{partner_id}/directory-reviews",
    tags=["directory"],
    responses=problem_responses(401, 403, 404, 422),
    summary="A partner's directory reviews",
)
async def list_partner_directory_reviews(
    partner_id: PartnerPath,
    session: SessionDep,
    _caller: PartnerOrAdminRead,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> DirectoryReviewPage:
    """The partner itself or an admin (read). Its submitted texts, what was decided and why; newest first."""
    rows = await directory.reviews(
        session,
        status=None,
        kind=None,
        partner_id=partner_id,
        before_id=convert.decode_int_cursor(cursor),
        limit=limit + 1,
    )
    return _review_page(rows, limit)


@router.post(
    "/partners/{partner_id}/directory-hide",
    tags=["directory"],
    responses=problem_responses(401, 403, 404, 422),
    summary="Hide a partner from the directory",
)
async def hide_from_directory(
    partner_id: PartnerPath,
    body: ReasonRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> Partner:
    """Admin (write). R18: sticky: the partner cannot put itself back (its `listed` opt-out is separate)."""
    row = await directory.hide(session, context(request, admin, clock), partner_id, reason=body.reason)
    return convert.partner(row)


@router.post(
    "/partners/{partner_id}/directory-unhide",
    tags=["directory"],
    responses=problem_responses(401, 403, 404, 422),
    summary="Show a hidden partner in the directory again",
)
async def unhide_in_directory(
    partner_id: PartnerPath,
    body: ReasonRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> Partner:
    """Admin (write). Undoes an admin's hiding; the partner's own opt-out stays as it is."""
    row = await directory.unhide(session, context(request, admin, clock), partner_id, reason=body.reason)
    return convert.partner(row)
