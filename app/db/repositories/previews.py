"""SQL for terms-change previews: their own rows, and the reads of the program's history they replay
(they only read the program's tables)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories.dialect import chunks
from app.db.tables import (
    Licence,
    MoneyEntry,
    Order,
    OrderLine,
    Partner,
    PartnerBalance,
    PointsEntry,
    QuarterClose,
    Relationship,
    TermsPreview,
    TermsPreviewPartner,
)
from app.domain.rules.names import Rule

COMMISSION_RULES = (Rule.REFERRAL_COMMISSION.value, Rule.LIFETIME_COMMISSION.value)
REFUND_RULE = Rule.REFUND.value


# --- the previews' own rows -------------------------------------------------------------------------------


async def add(session: AsyncSession, row: TermsPreview) -> TermsPreview:
    session.add(row)
    await session.flush()
    return row


async def get(session: AsyncSession, preview_id: uuid.UUID) -> TermsPreview | None:
    return await session.get(TermsPreview, preview_id)


async def newest(
    session: AsyncSession, *, limit: int, before: tuple[datetime, uuid.UUID] | None = None
) -> Sequence[TermsPreview]:
    query = select(TermsPreview).order_by(col(TermsPreview.created_at).desc(), col(TermsPreview.id)).limit(limit)
    if before is not None:
        query = query.where(
            or_(
                col(TermsPreview.created_at) < before[0],
                and_(col(TermsPreview.created_at) == before[0], col(TermsPreview.id) > before[1]),
            )
        )
    return (await session.execute(query)).scalars().all()


async def of_version(session: AsyncSession, version: int) -> TermsPreview | None:
    """The newest finished preview of the draft that became terms `version`."""
    query = (
        select(TermsPreview)
        .where(col(TermsPreview.published_version) == version)
        .order_by(col(TermsPreview.finished_at).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def mark_published(session: AsyncSession, digest: str, version: int) -> int:
    """The finished previews of a draft now published as `version`: kept with it from now on."""
    result = await session.execute(
        update(TermsPreview)
        .where(
            col(TermsPreview.draft_digest) == digest,
            col(TermsPreview.status) == "done",
            col(TermsPreview.published_version).is_(None),
        )
        .values(published_version=version)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_expired(session: AsyncSession, now: datetime) -> int:
    """Previews past their day, unless kept with the terms published from them."""
    expired = select(col(TermsPreview.id)).where(
        col(TermsPreview.expires_at) <= now, col(TermsPreview.published_version).is_(None)
    )
    await session.execute(delete(TermsPreviewPartner).where(col(TermsPreviewPartner.preview_id).in_(expired)))
    result = await session.execute(
        delete(TermsPreview).where(col(TermsPreview.expires_at) <= now, col(TermsPreview.published_version).is_(None))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def any_waiting(session: AsyncSession, now: datetime) -> bool:
    query = select(col(TermsPreview.id)).where(_claimable(now)).limit(1)
    return (await session.execute(query)).first() is not None


def _claimable(now: datetime) -> Any:
    return or_(
        col(TermsPreview.status) == "queued",
        and_(col(TermsPreview.status) == "running", col(TermsPreview.claimed_until) < now),
    )


async def claim(session: AsyncSession, worker: str, now: datetime, until: datetime) -> TermsPreview | None:
    """The oldest preview waiting (or whose worker died), claimed until `until`."""
    query = (
        select(TermsPreview)
        .where(_claimable(now))
        .order_by(col(TermsPreview.created_at))
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    row = (await session.execute(query)).scalars().first()
    if row is None:
        return None
    row.status, row.claimed_by, row.claimed_until = "running", worker, until
    row.started_at = row.started_at or now
    row.attempts += 1
    row.orders_done = 0
    await session.flush()
    return row


async def progress(
    session: AsyncSession, preview_id: uuid.UUID, worker: str, *, total: int, done: int, until: datetime
) -> bool:
    """Record progress while still this worker's; False when the claim was lost."""
    result = await session.execute(
        update(TermsPreview)
        .where(col(TermsPreview.id) == preview_id, col(TermsPreview.claimed_by) == worker)
        .values(orders_total=total, orders_done=done, claimed_until=until)
    )
    return bool(getattr(result, "rowcount", 0))


async def finish(
    session: AsyncSession,
    preview_id: uuid.UUID,
    worker: str,
    *,
    result: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    now: datetime,
    expires_at: datetime,
) -> bool:
    done = await session.execute(
        update(TermsPreview)
        .where(col(TermsPreview.id) == preview_id, col(TermsPreview.claimed_by) == worker)
        .values(
            status="done", result=result, finished_at=now, expires_at=expires_at, claimed_by=None, claimed_until=None
        )
    )
    if not getattr(done, "rowcount", 0):
        return False
    await session.execute(delete(TermsPreviewPartner).where(col(TermsPreviewPartner.preview_id) == preview_id))
    for part in chunks(list(rows), 1000):
        await session.execute(TermsPreviewPartner.__table__.insert(), [{"preview_id": preview_id, **r} for r in part])  # type: ignore[attr-defined]
    return True


async def fail(
    session: AsyncSession, preview_id: uuid.UUID, *, error: str, now: datetime, expires_at: datetime
) -> None:
    await session.execute(
        update(TermsPreview)
        .where(col(TermsPreview.id) == preview_id)
        .values(
            status="failed",
            error=error[:1000],
            finished_at=now,
            expires_at=expires_at,
            claimed_by=None,
            claimed_until=None,
        )
    )


async def partner_rows(
    session: AsyncSession, preview_id: uuid.UUID, *, after_rank: int, limit: int | None
) -> Sequence[TermsPreviewPartner]:
    query = (
        select(TermsPreviewPartner)
        .where(col(TermsPreviewPartner.preview_id) == preview_id, col(TermsPreviewPartner.impact_rank) > after_rank)
        .order_by(col(TermsPreviewPartner.impact_rank))
    )
    if limit is not None:
        query = query.limit(limit)
    return (await session.execute(query)).scalars().all()


# --- the history a preview replays (reads only) -----------------------------------------------------------


async def closed_quarters(session: AsyncSession) -> list[str]:
    rows = await session.execute(select(col(QuarterClose.quarter)).where(col(QuarterClose.statements) >= 0))
    return sorted(str(q) for (q,) in rows)


def _window_orders(start: datetime, end: datetime) -> Any:
    return and_(
        col(Order.placed_at) >= start,
        col(Order.placed_at) < end,
        col(Order.outcome) == "credited",
        col(Order.buyer_partner_id).is_(None),
        col(Order.partner_id).is_not(None),
    )


async def count_window_orders(session: AsyncSession, start: datetime, end: datetime) -> int:
    return int((await session.execute(select(func.count()).where(_window_orders(start, end)))).scalar_one())


async def window_orders(
    session: AsyncSession, start: datetime, end: datetime, *, after: tuple[datetime, str] | None, limit: int
) -> Sequence[Any]:
    """Credited orders of customers buying themselves, placed in [start, end), in placing order, with
    the first order of the customer's relationship."""
    query: Any = (
        select(
            col(Order.order_id),
            col(Order.placed_at),
            col(Order.recorded_at),
            col(Order.currency),
            col(Order.partner_id),
            col(Order.mode),
            col(Order.terms_version),
            col(Relationship.partner_id).label("relationship_partner_id"),
            col(Relationship.first_order_at),
        )
        .outerjoin(Relationship, col(Relationship.customer_id) == col(Order.customer_id))
        .where(_window_orders(start, end))
        .order_by(col(Order.placed_at), col(Order.order_id))
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            or_(
                col(Order.placed_at) > after[0],
                and_(col(Order.placed_at) == after[0], col(Order.order_id) > after[1]),
            )
        )
    return list((await session.execute(query)).all())


async def lines_of(session: AsyncSession, order_ids: Sequence[str]) -> list[Any]:
    """The lines of these orders, as rows of the columns a replay reads (no whole objects: a large
    program's window holds hundreds of thousands)."""
    found: list[Any] = []
    columns = (
        col(OrderLine.order_id),
        col(OrderLine.id),
        col(OrderLine.line_id),
        col(OrderLine.sku),
        col(OrderLine.quantity),
        col(OrderLine.kind),
        col(OrderLine.licence_id),
        col(OrderLine.term_end),
        col(OrderLine.list_amount),
        col(OrderLine.discount_amount),
        col(OrderLine.tax_amount),
        col(OrderLine.paid_amount),
        col(OrderLine.refunded_amount),
    )
    for part in chunks(list(order_ids), 1000):
        query = select(*columns).where(col(OrderLine.order_id).in_(part)).order_by(col(OrderLine.id))
        found.extend((await session.execute(query)).all())
    return found


async def commission_of_lines(session: AsyncSession, line_ids: Sequence[int]) -> Sequence[Any]:
    """Per order line: its commission credit's rule and the sum of its credits and refund reversals."""
    rows: list[Any] = []
    rule = func.max(case((col(MoneyEntry.rule).in_(COMMISSION_RULES), col(MoneyEntry.rule)), else_=None))
    for part in chunks(list(line_ids), 1000):
        query = (
            select(col(MoneyEntry.order_line_id), rule.label("rule"), func.sum(MoneyEntry.amount).label("amount"))
            .where(
                col(MoneyEntry.order_line_id).in_(part),
                col(MoneyEntry.rule).in_((*COMMISSION_RULES, REFUND_RULE)),
            )
            .group_by(col(MoneyEntry.order_line_id))
        )
        rows.extend((await session.execute(query)).all())
    return rows


async def points_entries_of_window_partners(session: AsyncSession, start: datetime, end: datetime) -> Sequence[Any]:
    """Every points entry of the partners whose orders the window holds: (partner, effective, recorded, points)."""
    partners = select(col(Order.partner_id)).where(_window_orders(start, end)).distinct()
    query = select(
        col(PointsEntry.partner_id),
        col(PointsEntry.effective_at),
        col(PointsEntry.recorded_at),
        col(PointsEntry.points),
    ).where(col(PointsEntry.partner_id).in_(partners))
    return list((await session.execute(query)).all())


async def partners_with_balances(session: AsyncSession) -> Sequence[Any]:
    """Every partner but those waiting for approval: their points and stored level."""
    query = (
        select(col(Partner.id), col(Partner.company), col(PartnerBalance.points), col(PartnerBalance.level))
        .outerjoin(PartnerBalance, col(PartnerBalance.partner_id) == col(Partner.id))
        .where(col(Partner.status) != "pending")
        .order_by(col(Partner.id))
    )
    return (await session.execute(query)).all()


async def active_licences_with_standing(session: AsyncSession) -> Sequence[Any]:
    """Every active licence of a partner, with the points standing for it (what its lapse takes),
    which the database keeps as entries are written (`licences.standing_points`)."""
    query = select(
        col(Licence.partner_id),
        col(Licence.licence_id),
        col(Licence.sku),
        col(Licence.quantity),
        col(Licence.term_end),
        col(Licence.standing_points),
    ).where(col(Licence.status) == "active", col(Licence.partner_id).is_not(None))
    return list((await session.execute(query)).all())


async def commission_of_orders_placed(session: AsyncSession, start: datetime, end: datetime) -> Sequence[Any]:
    """Per currency: the commission the ledger holds for credited orders placed in [start, end), net of
    refunds (as a preview's `actual`)."""
    query = (
        select(col(MoneyEntry.currency), func.sum(MoneyEntry.amount))
        .join(OrderLine, col(OrderLine.id) == col(MoneyEntry.order_line_id))
        .join(Order, col(Order.order_id) == col(OrderLine.order_id))
        .where(
            _window_orders(start, end),
            col(MoneyEntry.rule).in_((*COMMISSION_RULES, REFUND_RULE)),
        )
        .group_by(col(MoneyEntry.currency))
        .order_by(col(MoneyEntry.currency))
    )
    return list((await session.execute(query)).all())
