"""SQL for payout runs, their transfers and statements, and the self-billed invoices."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import dialect
from app.db.tables import Invoice, InvoiceCounter, PayoutRun, PayoutRunStatement, PayoutTransfer, Statement


async def lock_approved_due(session: AsyncSession, payout_by: datetime) -> Sequence[Statement]:
    """The approved statements due by `payout_by`, locked in id order. A run waiting here for another
    one's locks reads them again afterwards: a statement that run took is no longer approved and is
    left out (Postgres re-checks the condition of a row it waited for)."""
    stmt = (
        select(Statement)
        .where(col(Statement.status) == "approved", col(Statement.payout_date) <= payout_by)
        .order_by(col(Statement.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalars().all()


async def set_status(
    session: AsyncSession,
    statement_ids: Sequence[uuid.UUID],
    *,
    from_status: str,
    to_status: str,
    paid_at: datetime | None = None,
    reference: str | None = None,
) -> int:
    """Move these statements from one state to the other; returns how many moved."""
    if not statement_ids:
        return 0
    values: dict[str, object] = {"status": to_status}
    if to_status == "paid":
        values |= {"paid_at": paid_at, "payment_reference": reference}
    stmt = (
        update(Statement)
        .where(col(Statement.id).in_(list(statement_ids)), col(Statement.status) == from_status)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def next_invoice_sequence(session: AsyncSession, series: str, year: int) -> int:
    """The next number of the series in the year. The counter row is locked until the transaction
    ends, so concurrent issuers take numbers one after the other: none skipped, none given twice."""
    await session.execute(
        dialect.insert(session, InvoiceCounter)
        .values(series=series, year=year, last=0)
        .on_conflict_do_nothing(index_elements=[col(InvoiceCounter.series), col(InvoiceCounter.year)])
    )
    stmt = (
        update(InvoiceCounter)
        .where(col(InvoiceCounter.series) == series, col(InvoiceCounter.year) == year)
        .values(last=col(InvoiceCounter.last) + 1)
        .returning(col(InvoiceCounter.last))
    )
    return int((await session.execute(stmt)).scalar_one())


async def invoices_of_statements(session: AsyncSession, statement_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Invoice]:
    if not statement_ids:
        return {}
    stmt = select(Invoice).where(col(Invoice.statement_id).in_(list(statement_ids)))
    return {i.statement_id: i for i in (await session.execute(stmt)).scalars().all()}


async def invoices(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[Invoice]:
    stmt = (
        select(Invoice)
        .where(col(Invoice.partner_id) == partner_id)
        .order_by(col(Invoice.issued_at).desc(), col(Invoice.id).desc())
    )
    return (await session.execute(stmt)).scalars().all()


async def invoice(session: AsyncSession, invoice_id: int) -> Invoice | None:
    return await session.get(Invoice, invoice_id)


async def run(session: AsyncSession, run_id: uuid.UUID, *, for_update: bool = False) -> PayoutRun | None:
    stmt = select(PayoutRun).where(col(PayoutRun.id) == run_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def runs(
    session: AsyncSession, limit: int, before: tuple[datetime, uuid.UUID] | None = None
) -> Sequence[PayoutRun]:
    """Runs, newest first (created_at, then id), those before `before` (a page's last) only."""
    stmt = select(PayoutRun)
    if before is not None:
        at, run_id = before
        stmt = stmt.where(
            or_(col(PayoutRun.created_at) < at, and_(col(PayoutRun.created_at) == at, col(PayoutRun.id) < run_id))
        )
    stmt = stmt.order_by(col(PayoutRun.created_at).desc(), col(PayoutRun.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def transfers(session: AsyncSession, run_id: uuid.UUID, *, for_update: bool = False) -> Sequence[PayoutTransfer]:
    stmt = select(PayoutTransfer).where(col(PayoutTransfer.run_id) == run_id).order_by(col(PayoutTransfer.id))
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalars().all()


async def run_statements(session: AsyncSession, run_id: uuid.UUID) -> Sequence[PayoutRunStatement]:
    stmt = (
        select(PayoutRunStatement).where(col(PayoutRunStatement.run_id) == run_id).order_by(col(PayoutRunStatement.id))
    )
    return (await session.execute(stmt)).scalars().all()


async def statements(session: AsyncSession, statement_ids: Sequence[uuid.UUID]) -> Sequence[Statement]:
    if not statement_ids:
        return []
    stmt = select(Statement).where(col(Statement.id).in_(list(statement_ids))).order_by(col(Statement.id))
    return (await session.execute(stmt)).scalars().all()


async def run_holding(session: AsyncSession, statement_id: uuid.UUID) -> str | None:
    """The reference of the run whose transfer pays this statement now (it is `in_payment`)."""
    stmt = (
        select(col(PayoutRun.reference))
        .join(PayoutRunStatement, col(PayoutRunStatement.run_id) == col(PayoutRun.id))
        .join(PayoutTransfer, col(PayoutTransfer.id) == col(PayoutRunStatement.transfer_id))
        .where(col(PayoutRunStatement.statement_id) == statement_id, col(PayoutTransfer.status) == "pending")
    )
    return (await session.execute(stmt)).scalars().first()
