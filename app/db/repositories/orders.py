"""SQL for orders, their lines, licences, refunds and discount mismatches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.db.repositories.dialect import table_of
from app.db.tables import DiscountMismatch, Licence, Order, OrderLine, Refund


async def get_order(session: AsyncSession, order_id: str) -> Order | None:
    return (await session.execute(select(Order).where(col(Order.order_id) == order_id))).scalar_one_or_none()


async def order_hash(session: AsyncSession, order_id: str) -> str | None:
    """The content hash of the recorded order with this id, or None when none is recorded."""
    return (await session.execute(_ORDER_HASH, {"order_id": order_id})).scalar_one_or_none()


_ORDER_HASH = select(col(Order.content_hash)).where(col(Order.order_id) == bindparam("order_id"))


async def insert_orders(session: AsyncSession, orders: Sequence[dict[str, Any]]) -> None:
    """Record orders (Core: no unit of work): one INSERT for all of them. An order id recorded
    already raises IntegrityError (callers look it up first, under its lock)."""
    with session.no_autoflush:
        await session.execute(_INSERT_ORDERS, list(orders))


_INSERT_ORDERS = insert(table_of(Order))  # built once
_NEW_LINE = aliased(OrderLine)


async def insert_licences(session: AsyncSession, licences: Sequence[dict[str, Any]]) -> None:
    """Record licences sold (Core: no unit of work): one INSERT for all of them."""
    with session.no_autoflush:
        await session.execute(_INSERT_LICENCES, list(licences))


_INSERT_LICENCES = insert(table_of(Licence))


async def insert_refunds(session: AsyncSession, refunds: Sequence[dict[str, Any]]) -> None:
    """Record refunds (Core): one INSERT for all of them. A refund id recorded already raises
    IntegrityError (callers look it up first, under its order's lock)."""
    with session.no_autoflush:
        await session.execute(_INSERT_REFUNDS, list(refunds))


_INSERT_REFUNDS = insert(table_of(Refund))


_INSERT_LINES = insert(table_of(OrderLine)).returning(
    table_of(OrderLine).c.id, sort_by_parameter_order=True
)  # built once: every order runs it


@dataclass(slots=True)
class NewLine:
    """An order line about to be recorded: a plain object, read by the rules, never changed."""

    order_id: str
    line_id: str
    sku: str
    quantity: int
    kind: str
    licence_id: str | None
    term_end: datetime | None
    list_amount: int
    discount_amount: int
    tax_amount: int
    paid_amount: int
    refunded_amount: int = 0
    id: int | None = None


_LINE_COLUMNS = [name for name in NewLine.__dataclass_fields__ if name != "id"]


async def insert_lines(session: AsyncSession, lines: Sequence[NewLine]) -> None:
    """Record order lines and give each its id (Core: no unit of work, no ORM object). One INSERT on
    Postgres; SQLite runs one per line."""
    rows = [{name: getattr(line, name) for name in _LINE_COLUMNS} for line in lines]
    with session.no_autoflush:  # as the order's INSERT
        ids = (await session.execute(_INSERT_LINES, rows)).scalars().all()
    for line, line_id in zip(lines, ids, strict=True):
        line.id = line_id


async def lines_for_update(session: AsyncSession, order_id: str, line_ids: Sequence[str]) -> dict[str, OrderLine]:
    """The order's lines among these store line ids, locked, by line id: one statement."""
    stmt = (
        select(OrderLine)
        .where(col(OrderLine.order_id) == order_id, col(OrderLine.line_id).in_(sorted(set(line_ids))))
        .order_by(col(OrderLine.id))
        .with_for_update()
    )
    return {row.line_id: row for row in (await session.execute(stmt)).scalars()}


async def lines_of_orders_for_update(session: AsyncSession, order_ids: Sequence[str]) -> Sequence[OrderLine]:
    """Every line of these orders, locked in id order: one statement."""
    stmt = (
        select(OrderLine)
        .where(col(OrderLine.order_id).in_(sorted(set(order_ids))))
        .order_by(col(OrderLine.id))
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()


async def renewed_until(session: AsyncSession, licence_ids: Sequence[str]) -> dict[str, datetime | None]:
    """R10, for each licence: the latest term end a renewal line gave it past every new-licence line
    of it (None when no renewal did), so that `renewed_past(licence, moment)` is that end > moment."""
    if not licence_ids:
        return {}
    first_term = (
        select(func.max(col(_NEW_LINE.term_end)))
        .where(col(_NEW_LINE.licence_id) == col(OrderLine.licence_id), col(_NEW_LINE.kind) == "new")
        .scalar_subquery()
    )
    stmt = (
        select(col(OrderLine.licence_id), func.max(col(OrderLine.term_end)))
        .where(
            col(OrderLine.licence_id).in_(sorted(set(licence_ids))),
            col(OrderLine.kind) == "renewal",
            or_(first_term.is_(None), col(OrderLine.term_end) > first_term),
        )
        .group_by(col(OrderLine.licence_id))
    )
    found: dict[str, datetime | None] = dict.fromkeys(licence_ids)
    for licence_id, until in (await session.execute(stmt)).all():
        found[str(licence_id)] = until
    return found


async def renewed_past(session: AsyncSession, licence_id: str, moment: datetime) -> bool:
    """R10: whether a renewal moved the licence's term end past `moment`: a renewal line ending after
    it and after every new-licence line of the licence (a renewal that ends no later moved nothing)."""
    first_term = (
        select(func.max(col(OrderLine.term_end)))
        .where(col(OrderLine.licence_id) == licence_id, col(OrderLine.kind) == "new")
        .scalar_subquery()
    )
    stmt = select(
        select(col(OrderLine.id))
        .where(
            col(OrderLine.licence_id) == licence_id,
            col(OrderLine.kind) == "renewal",
            col(OrderLine.term_end) > moment,
            or_(first_term.is_(None), col(OrderLine.term_end) > first_term),
        )
        .exists()
    )
    return bool((await session.execute(stmt)).scalar_one())


async def licences_for_update(session: AsyncSession, licence_ids: Sequence[str]) -> dict[str, Licence]:
    """The licences among these ids that exist, locked, by id."""
    if not licence_ids:
        return {}
    rows = await session.execute(_LICENCES_FOR_UPDATE, {"ids": sorted(set(licence_ids))})
    return {licence.licence_id: licence for licence in rows.scalars()}


_LICENCES_FOR_UPDATE = (  # built once: every order runs it
    select(Licence)
    .where(col(Licence.licence_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(Licence.licence_id))  # one lock order for every transaction: no deadlock
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def get_refund(session: AsyncSession, refund_id: str) -> Refund | None:
    return (await session.execute(select(Refund).where(col(Refund.refund_id) == refund_id))).scalar_one_or_none()


async def overdue_licence_ids(session: AsyncSession, before: datetime, limit: int) -> Sequence[str]:
    """Active licences whose term ended before `before`, skipping those another sweeper holds."""
    stmt = (
        select(col(Licence.licence_id))
        .where(col(Licence.status) == "active", col(Licence.term_end) < before)
        .order_by(col(Licence.term_end))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [r[0] for r in (await session.execute(stmt)).all()]


async def licences(
    session: AsyncSession,
    *,
    without_term_end: bool | None,
    status: str | None,
    partner_id: uuid.UUID | None,
    before_line_id: int | None,
    limit: int,
) -> Sequence[tuple[Licence, str]]:
    """Licences with the order that sold them, the newest sale first (by the line that made them)."""
    stmt = select(Licence, col(OrderLine.order_id)).join(OrderLine, col(OrderLine.id) == col(Licence.order_line_id))
    if without_term_end is not None:
        stmt = stmt.where(col(Licence.term_end).is_(None) if without_term_end else col(Licence.term_end).is_not(None))
    if status is not None:
        stmt = stmt.where(col(Licence.status) == status)
    if partner_id is not None:
        stmt = stmt.where(col(Licence.partner_id) == partner_id)
    if before_line_id is not None:
        stmt = stmt.where(col(Licence.order_line_id) < before_line_id)
    stmt = stmt.order_by(col(Licence.order_line_id).desc()).limit(limit)
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def mismatches(session: AsyncSession, *, limit: int, before_id: int | None) -> Sequence[DiscountMismatch]:
    stmt = select(DiscountMismatch)
    if before_id is not None:
        stmt = stmt.where(col(DiscountMismatch.id) < before_id)
    stmt = stmt.order_by(col(DiscountMismatch.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def lock_order_id(session: AsyncSession, order_id: str) -> None:
    """Serialise everything about one order id until the transaction ends.

    Without it, a refund could find no order and park while the order commits unseen, and the
    order would never learn that a refund waits for it. SQLite transactions are serial already.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_LOCK_ORDER_ID, {"key": f"order:{order_id}"})


_LOCK_ORDER_ID = select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("key", type_=String()), 0)))
