"""SQL for quarter closes, statements, their lines and the dashboards' summaries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import dialect
from app.db.repositories.dialect import table_of
from app.db.tables import (
    CLOSE_IN_PROGRESS,
    Customer,
    MoneyEntry,
    Order,
    PartnerQuarterMoney,
    QuarterClose,
    Statement,
    StatementLine,
)


async def claim_close(session: AsyncSession, close: QuarterClose) -> bool:
    """Record the close unless it exists; a concurrent close waits here, then finds it done."""
    stmt = (
        dialect.insert(session, QuarterClose)
        .values(
            quarter=close.quarter,
            time_zone=close.time_zone,
            cutoff=close.cutoff,
            closed_at=close.closed_at,
            closed_by=close.closed_by,
            statements=CLOSE_IN_PROGRESS,
        )
        .on_conflict_do_nothing(index_elements=[col(QuarterClose.quarter)])
        .returning(col(QuarterClose.quarter))
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def get_close(session: AsyncSession, quarter: str) -> QuarterClose | None:
    return await session.get(QuarterClose, quarter)


async def closes(session: AsyncSession) -> Sequence[QuarterClose]:
    return (await session.execute(select(QuarterClose).order_by(col(QuarterClose.quarter)))).scalars().all()


async def unsettled_entries(
    session: AsyncSession, before: datetime | None, partner_id: uuid.UUID | None = None
) -> Sequence[MoneyEntry]:
    """Money entries (effective before `before`, of one partner when named) that no statement holds yet."""
    stmt = (
        select(MoneyEntry)
        .outerjoin(StatementLine, col(StatementLine.money_entry_id) == col(MoneyEntry.id))
        .where(col(StatementLine.id).is_(None))
        .order_by(col(MoneyEntry.partner_id), col(MoneyEntry.currency), col(MoneyEntry.id))
    )
    if before is not None:
        stmt = stmt.where(col(MoneyEntry.effective_at) < before)
    if partner_id is not None:
        stmt = stmt.where(col(MoneyEntry.partner_id) == partner_id)
    return (await session.execute(stmt)).scalars().all()


async def latest_statement(
    session: AsyncSession, partner_id: uuid.UUID, currency: str, before_quarter: str
) -> Statement | None:
    stmt = (
        select(Statement)
        .where(
            col(Statement.partner_id) == partner_id,
            col(Statement.currency) == currency,
            col(Statement.quarter) < before_quarter,
        )
        .order_by(col(Statement.quarter).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def negative_carries(session: AsyncSession, quarter: str) -> Sequence[Statement]:
    """The latest statement of each partner and currency before `quarter`, where it closed negative."""
    latest = (
        select(col(Statement.partner_id), col(Statement.currency), func.max(Statement.quarter).label("quarter"))
        .where(col(Statement.quarter) < quarter)
        .group_by(col(Statement.partner_id), col(Statement.currency))
        .subquery()
    )
    stmt = (
        select(Statement)
        .join(
            latest,
            and_(
                col(Statement.partner_id) == latest.c.partner_id,
                col(Statement.currency) == latest.c.currency,
                col(Statement.quarter) == latest.c.quarter,
            ),
        )
        .where(col(Statement.closing_balance) < 0)
    )
    return (await session.execute(stmt)).scalars().all()


async def get(session: AsyncSession, statement_id: uuid.UUID, *, for_update: bool = False) -> Statement | None:
    stmt = select(Statement).where(col(Statement.id) == statement_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock(session: AsyncSession, statement_ids: Sequence[uuid.UUID]) -> None:
    """Lock these statements in id order, so two bulk calls naming them in any order queue up
    instead of deadlocking each other (each would otherwise hold one and wait for the other)."""
    if not statement_ids:
        return
    stmt = (
        select(col(Statement.id))
        .where(col(Statement.id).in_(sorted(set(statement_ids))))
        .order_by(col(Statement.id))
        .with_for_update()
    )
    await session.execute(stmt)


async def search(
    session: AsyncSession,
    *,
    partner_id: uuid.UUID | None,
    quarter: str | None,
    status: str | Sequence[str] | None,
    limit: int,
    payout_by: datetime | None = None,
) -> Sequence[Statement]:
    """Statements matching every given filter; `status` is one state or a list of them."""
    stmt = select(Statement)
    if partner_id is not None:
        stmt = stmt.where(col(Statement.partner_id) == partner_id)
    if quarter is not None:
        stmt = stmt.where(col(Statement.quarter) == quarter)
    if isinstance(status, str):
        stmt = stmt.where(col(Statement.status) == status)
    elif status is not None:
        stmt = stmt.where(col(Statement.status).in_(list(status)))
    if payout_by is not None:
        stmt = stmt.where(col(Statement.payout_date) <= payout_by)
    stmt = stmt.order_by(col(Statement.quarter).desc(), col(Statement.currency), col(Statement.id)).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def count_due(session: AsyncSession, payout_by: datetime, states: Sequence[str]) -> int:
    """Statements in one of `states` whose payout date is at or before `payout_by`."""
    stmt = (
        select(func.count())
        .select_from(Statement)
        .where(col(Statement.status).in_(list(states)), col(Statement.payout_date) <= payout_by)
    )
    return int((await session.execute(stmt)).scalar_one())


def _taken_at_close(cutoff: datetime, hold: timedelta) -> Any:
    """The entries a statement closed at `cutoff` takes: dated before it, their hold period over by then."""
    return and_(col(MoneyEntry.effective_at) < cutoff, col(MoneyEntry.effective_at) <= cutoff - hold)


async def payable_sums(
    session: AsyncSession, *, cutoff: datetime, hold: timedelta, after: tuple[datetime, timedelta] | None
) -> Sequence[tuple[uuid.UUID, str, int, int]]:
    """(partner, currency, entries, total) of the money entries no statement holds yet that a statement
    closed at `cutoff` would take, leaving out those one closed at `after` (cutoff, hold) would take first."""
    stmt = (
        select(col(MoneyEntry.partner_id), col(MoneyEntry.currency), func.count(), func.sum(MoneyEntry.amount))
        .outerjoin(StatementLine, col(StatementLine.money_entry_id) == col(MoneyEntry.id))
        .where(col(StatementLine.id).is_(None), _taken_at_close(cutoff, hold))
        .group_by(col(MoneyEntry.partner_id), col(MoneyEntry.currency))
    )
    if after is not None:
        stmt = stmt.where(~_taken_at_close(*after))
    return [(r[0], r[1], int(r[2]), int(r[3] or 0)) for r in (await session.execute(stmt)).all()]


async def first_unsettled_at(session: AsyncSession, since: datetime | None, before: datetime) -> datetime | None:
    """The earliest effective time, in [since, before), of a money entry no statement holds yet."""
    stmt = (
        select(func.min(col(MoneyEntry.effective_at)))
        .outerjoin(StatementLine, col(StatementLine.money_entry_id) == col(MoneyEntry.id))
        .where(col(StatementLine.id).is_(None), col(MoneyEntry.effective_at) < before)
    )
    if since is not None:
        stmt = stmt.where(col(MoneyEntry.effective_at) >= since)
    found: datetime | None = (await session.execute(stmt)).scalar_one_or_none()  # min() keeps the UTC type
    return found


async def lines(
    session: AsyncSession, statement_ids: Sequence[uuid.UUID]
) -> Sequence[tuple[StatementLine, MoneyEntry, str | None]]:
    """The lines of these statements with their entries and the customer's company."""
    if not statement_ids:
        return []
    stmt = (
        select(StatementLine, MoneyEntry, col(Customer.company))
        .join(MoneyEntry, col(MoneyEntry.id) == col(StatementLine.money_entry_id))
        .outerjoin(Order, col(Order.order_id) == col(MoneyEntry.order_id))
        .outerjoin(Customer, col(Customer.id) == col(Order.customer_id))
        .where(col(StatementLine.statement_id).in_(statement_ids))
        .order_by(col(StatementLine.statement_id), col(MoneyEntry.effective_at), col(MoneyEntry.id))
    )
    return [(row[0], row[1], row[2]) for row in (await session.execute(stmt)).all()]


def _add_accrued_stmt(dialect_module: Any) -> Any:
    stmt = dialect_module.insert(table_of(PartnerQuarterMoney))
    return stmt.on_conflict_do_update(
        index_elements=[
            col(PartnerQuarterMoney.partner_id),
            col(PartnerQuarterMoney.quarter),
            col(PartnerQuarterMoney.currency),
        ],
        set_={"accrued": col(PartnerQuarterMoney.accrued) + stmt.excluded.accrued},
    )


_ADD_ACCRUED = dialect.per_dialect(_add_accrued_stmt)  # built once: every credited event runs it


async def add_accrued(session: AsyncSession, partner_id: uuid.UUID, quarter: str, currency: str, amount: int) -> None:
    await session.execute(
        dialect.pick(session, _ADD_ACCRUED),
        {"partner_id": partner_id, "quarter": quarter, "currency": currency, "accrued": amount},
    )


async def add_accrued_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """`add_accrued` for several (partner, quarter, currency): one statement, run for each row."""
    await session.execute(dialect.pick(session, _ADD_ACCRUED), list(rows))


async def unpaid_before(session: AsyncSession, moment: datetime, states: Sequence[str]) -> Sequence[Statement]:
    """Statements in one of `states` (not paid) whose payout date is at or before `moment`."""
    stmt = (
        select(Statement)
        .where(col(Statement.status).in_(list(states)), col(Statement.payout_date) <= moment)
        .order_by(col(Statement.payout_date), col(Statement.id))
    )
    return (await session.execute(stmt)).scalars().all()
