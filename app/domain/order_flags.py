"""Orders an admin should review, in one list: a discount other than expected (R12), a not-for-resale
licence sold (R17), a partner's own company as its customer (R22), a late order within a partner's
registration of a customer whose relationship is another's (R08)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import order_flags as repo
from app.db.tables import OrderFlag
from app.domain import audit, events
from app.domain.context import Context
from app.domain.errors import InvalidTransition, NotFound

FlagKind = Literal["discount_mismatch", "nfr_resale", "own_company", "relationship_conflict"]


def flag(
    session: AsyncSession,
    *,
    kind: FlagKind,
    order_id: str,
    order_line_id: int | None,
    partner_id: uuid.UUID | None,
    detail: str,
    now: datetime,
) -> OrderFlag:
    """Keep the order for review and record `order.flagged`, in the order's transaction."""
    row = OrderFlag(
        kind=kind,
        order_id=order_id,
        order_line_id=order_line_id,
        partner_id=partner_id,
        detail=detail[:500],
        recorded_at=now,
    )
    repo.add(session, row)
    events.record(
        session,
        "order.flagged",
        events.OrderFlagged(order_id=order_id, kind=kind, partner_id=partner_id, detail=detail[:500]),
        occurred_at=now,
        partner_id=partner_id,
        subject=f"order:{order_id}",
        refs={"order_id": order_id} | ({"order_line_id": order_line_id} if order_line_id is not None else {}),
    )
    return row


async def search(
    session: AsyncSession, *, kind: FlagKind | None, resolved: bool | None, before_id: int | None, limit: int
) -> Sequence[OrderFlag]:
    """Flags, newest first."""
    return await repo.search(session, kind=kind, resolved=resolved, before_id=before_id, limit=limit)


async def resolve(session: AsyncSession, ctx: Context, flag_id: int, *, reason: str) -> OrderFlag:
    """An admin closes a flag with the reason; the flag and what it found stay."""
    row = await repo.get(session, flag_id, for_update=True)
    if row is None:
        raise NotFound(f"No order flag {flag_id}.", code="order_flag_not_found")
    if row.resolved_at is not None:
        raise InvalidTransition(
            f"Order flag {flag_id} was resolved already ({row.resolution}).", code="order_flag_resolved"
        )
    row.resolved_at, row.resolved_by, row.resolution = ctx.now, ctx.actor, reason
    await session.flush()
    audit.record(
        session,
        ctx,
        action="order_flag.resolved",
        object_type="order_flag",
        object_id=flag_id,
        before={"resolved_at": None},
        after={"resolved_at": ctx.now.isoformat(), "resolution": reason},
    )
    return row
