"""What an admin should review: flagged orders (R12, R17, R22)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from app.domain import order_flags
from app.errors import problem_responses
from app.routers import convert, schemas
from app.routers.deps import AdminRead, AdminWrite, ClockDep, SessionDep, context

router = APIRouter(prefix="/v1")

FlagId = Annotated[int, Path(ge=1, le=2**62)]


def _flag(row: object) -> schemas.OrderFlag:
    return schemas.OrderFlag.model_validate(row, from_attributes=True)


@router.get(
    "/order-flags", tags=["order flags"], responses=problem_responses(401, 403, 422), summary="List order flags"
)
async def list_order_flags(
    session: SessionDep,
    _admin: AdminRead,
    kind: Annotated[schemas.OrderFlagKind | None, Query()] = None,
    resolved: Annotated[bool | None, Query(description="false: only those still to review.")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> schemas.OrderFlagPage:
    """Admin (read). Every order an admin should review, newest first: `discount_mismatch` (R12),
    `nfr_resale` (R17), `own_company` (R22)."""
    rows = await order_flags.search(
        session, kind=kind, resolved=resolved, before_id=convert.decode_int_cursor(cursor), limit=limit + 1
    )
    page = convert.id_page(rows, limit, schemas.OrderFlag)
    return schemas.OrderFlagPage(**page, has_more=page["next_cursor"] is not None)


@router.post(
    "/order-flags/{flag_id}/resolve",
    tags=["order flags"],
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Resolve an order flag",
)
async def resolve_order_flag(
    flag_id: FlagId,
    body: schemas.ResolveRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> schemas.OrderFlag:
    """Admin (write). Closes the flag with the reason (kept with who and when); 409 when resolved already.
    Nothing is re-rated: what the order earned stays as it was."""
    row = await order_flags.resolve(session, context(request, admin, clock), flag_id, reason=body.reason)
    return _flag(row)
