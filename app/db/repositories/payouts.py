"""SQL for payout runs, their transfers and statements, and the self-billed invoices."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, defer
from sqlmodel import col

from app.db.repositories import dialect
from app.db.repositories.dialect import chunks
from app.db.tables import (
    Invoice,
    InvoiceCounter,
    InvoiceDocument,
    MoneyEntry,
    PayoutRun,
    PayoutRunStatement,
    PayoutTransfer,
    Statement,
    StatementLine,
)


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


async def take_invoice_sequences(session: AsyncSession, series: str, year: int, count: int) -> int:
    """Take the next `count` numbers of the series in the year; returns the first. The counter row is
    locked until the transaction ends, so concurrent issuers take numbers one after the other: none
    skipped, none given twice."""
    await session.execute(
        dialect.insert(session, InvoiceCounter)
        .values(series=series, year=year, last=0)
        .on_conflict_do_nothing(index_elements=[col(InvoiceCounter.series), col(InvoiceCounter.year)])
    )
    stmt = (
        update(InvoiceCounter)
        .where(col(InvoiceCounter.series) == series, col(InvoiceCounter.year) == year)
        .values(last=col(InvoiceCounter.last) + count)
        .returning(col(InvoiceCounter.last))
    )
    return int((await session.execute(stmt)).scalar_one()) - count + 1


_credited = aliased(Invoice)


def _standing() -> Any:
    """An invoice no credit note credits."""
    return ~exists().where(col(_credited.credits_id) == col(Invoice.id))


async def invoices_of_statements(session: AsyncSession, statement_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Invoice]:
    """Each statement's invoice in force: not a credit note, and not credited by one."""
    found: dict[uuid.UUID, Invoice] = {}
    for part in chunks(statement_ids):
        stmt = select(Invoice).where(col(Invoice.statement_id).in_(part), col(Invoice.kind) == "invoice", _standing())
        found |= {i.statement_id: i for i in (await session.execute(stmt)).scalars().all()}
    return found


async def invoices_by_id(session: AsyncSession, invoice_ids: Sequence[int]) -> dict[int, Invoice]:
    found: dict[int, Invoice] = {}
    for part in chunks(invoice_ids):
        stmt = select(Invoice).where(col(Invoice.id).in_(part))
        found |= {i.id or 0: i for i in (await session.execute(stmt)).scalars().all()}
    return found


async def commission_by_rule(
    session: AsyncSession, statement_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, int]]]:
    """Each statement's lines summed by the rule of their entries."""
    found: dict[uuid.UUID, list[tuple[str, int]]] = {}
    for part in chunks(statement_ids):
        stmt = (
            select(col(StatementLine.statement_id), col(MoneyEntry.rule), func.sum(col(StatementLine.amount)))
            .join(MoneyEntry, col(MoneyEntry.id) == col(StatementLine.money_entry_id))
            .where(col(StatementLine.statement_id).in_(part))
            .group_by(col(StatementLine.statement_id), col(MoneyEntry.rule))
        )
        for statement_id, rule, amount in (await session.execute(stmt)).all():
            found.setdefault(statement_id, []).append((rule, int(amount)))
    return found


async def invoices(
    session: AsyncSession,
    limit: int,
    *,
    partner_id: uuid.UUID | None = None,
    before: tuple[datetime, int] | None = None,
) -> Sequence[Invoice]:
    """Invoices and credit notes, newest first (issued_at, then id), of one partner or all; after a
    page, those before its last."""
    stmt = select(Invoice)
    if partner_id is not None:
        stmt = stmt.where(col(Invoice.partner_id) == partner_id)
    if before is not None:
        at, invoice_id = before
        stmt = stmt.where(
            or_(col(Invoice.issued_at) < at, and_(col(Invoice.issued_at) == at, col(Invoice.id) < invoice_id))
        )
    stmt = stmt.order_by(col(Invoice.issued_at).desc(), col(Invoice.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def credit_note_of(session: AsyncSession, invoice_id: int) -> Invoice | None:
    stmt = select(Invoice).where(col(Invoice.credits_id) == invoice_id)
    return (await session.execute(stmt)).scalar_one_or_none()


def add_documents(session: AsyncSession, invoice_ids: Sequence[int], run_id: uuid.UUID | None) -> None:
    session.add_all([InvoiceDocument(invoice_id=i, run_id=run_id) for i in invoice_ids])


async def document(session: AsyncSession, invoice_id: int) -> InvoiceDocument | None:
    """The document with its PDF (loaded even where `documents` left it out)."""
    stmt = (
        select(InvoiceDocument)
        .where(col(InvoiceDocument.invoice_id) == invoice_id)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def documents(session: AsyncSession, invoice_ids: Sequence[int]) -> dict[int, InvoiceDocument]:
    """The documents' state, without their PDFs."""
    found: dict[int, InvoiceDocument] = {}
    for part in chunks(invoice_ids):
        stmt = (
            select(InvoiceDocument)
            .options(defer(InvoiceDocument.pdf))  # type: ignore[arg-type]
            .where(col(InvoiceDocument.invoice_id).in_(part))
        )
        found |= {d.invoice_id: d for d in (await session.execute(stmt)).scalars().all()}
    return found


async def credit_notes_of(session: AsyncSession, invoice_ids: Sequence[int]) -> dict[int, Invoice]:
    """The credit note crediting each of these invoices, where one does."""
    found: dict[int, Invoice] = {}
    for part in chunks(invoice_ids):
        stmt = select(Invoice).where(col(Invoice.credits_id).in_(part))
        found |= {i.credits_id or 0: i for i in (await session.execute(stmt)).scalars().all()}
    return found


async def documents_progress(session: AsyncSession, run_id: uuid.UUID) -> tuple[int, int, int]:
    """The run's invoice documents: issued, rendered, failed at the last attempt."""
    return (await documents_progress_of(session, [run_id])).get(run_id, (0, 0, 0))


async def documents_progress_of(
    session: AsyncSession, run_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int, int]]:
    """`documents_progress` of several runs, in one statement. A failed document that rendered since
    counts as rendered only."""
    if not run_ids:
        return {}
    failed = case((col(InvoiceDocument.rendered_at).is_(None) & col(InvoiceDocument.error).is_not(None), 1))
    stmt = (
        select(
            col(InvoiceDocument.run_id),
            func.count(),
            func.count(col(InvoiceDocument.rendered_at)),
            func.count(failed),
        )
        .where(col(InvoiceDocument.run_id).in_(list(run_ids)))
        .group_by(col(InvoiceDocument.run_id))
    )
    return {r: (int(i), int(d), int(f)) for r, i, d, f in (await session.execute(stmt)).all() if r is not None}


async def any_document_due(session: AsyncSession, now: datetime) -> bool:
    stmt = select(col(InvoiceDocument.invoice_id)).where(_document_due(now)).limit(1)
    return (await session.execute(stmt)).first() is not None


def _document_due(now: datetime) -> Any:
    return and_(
        col(InvoiceDocument.pdf).is_(None),
        or_(col(InvoiceDocument.claimed_until).is_(None), col(InvoiceDocument.claimed_until) <= now),
    )


async def claim_documents(
    session: AsyncSession, worker: str, now: datetime, until: datetime, limit: int
) -> list[tuple[Invoice, str | None]]:
    """Claim up to `limit` documents to render (oldest invoices first), each with the number of the
    invoice it credits (a credit note's); another worker skips what this one claimed."""
    stmt = (
        select(col(InvoiceDocument.invoice_id))
        .where(_document_due(now))
        .order_by(col(InvoiceDocument.invoice_id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(stmt)).scalars().all())
    if not ids:
        return []
    await session.execute(
        update(InvoiceDocument)
        .where(col(InvoiceDocument.invoice_id).in_(ids))
        .values(claimed_by=worker, claimed_until=until, attempts=col(InvoiceDocument.attempts) + 1)
        .execution_options(synchronize_session=False)
    )
    rows = await invoices_by_id(session, ids)
    credited = await invoices_by_id(session, [r.credits_id for r in rows.values() if r.credits_id is not None])
    return [(rows[i], credited[rows[i].credits_id or 0].number if rows[i].credits_id else None) for i in ids]


async def store_document(
    session: AsyncSession, invoice_id: int, worker: str, *, pdf: bytes, sha256: str, at: datetime
) -> bool:
    """Keep the rendered PDF, if this worker still holds the claim and none was kept before."""
    stmt = (
        update(InvoiceDocument)
        .where(
            col(InvoiceDocument.invoice_id) == invoice_id,
            col(InvoiceDocument.claimed_by) == worker,
            col(InvoiceDocument.pdf).is_(None),
        )
        .values(pdf=pdf, sha256=sha256, rendered_at=at, claimed_by=None, claimed_until=None, error=None)
        .execution_options(synchronize_session=False)
    )
    return bool((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def document_failed(
    session: AsyncSession, invoice_id: int, worker: str, *, error: str, retry_at: datetime
) -> None:
    await session.execute(
        update(InvoiceDocument)
        .where(
            col(InvoiceDocument.invoice_id) == invoice_id,
            col(InvoiceDocument.claimed_by) == worker,
            col(InvoiceDocument.pdf).is_(None),
        )
        .values(error=error[:1000], claimed_by=None, claimed_until=retry_at)
        .execution_options(synchronize_session=False)
    )


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


async def partner_transfers(
    session: AsyncSession, partner_id: uuid.UUID, limit: int, before: int | None
) -> list[tuple[PayoutTransfer, PayoutRun]]:
    """The transfers that pay (or paid, or were returned) to the partner, newest first, with their runs."""
    stmt = (
        select(PayoutTransfer, PayoutRun)
        .join(PayoutRun, col(PayoutRun.id) == col(PayoutTransfer.run_id))
        .where(col(PayoutTransfer.partner_id) == partner_id)
    )
    if before is not None:
        stmt = stmt.where(col(PayoutTransfer.id) < before)
    stmt = stmt.order_by(col(PayoutTransfer.id).desc()).limit(limit)
    return [(t, r) for t, r in (await session.execute(stmt)).all()]


async def paid_by_transfers(
    session: AsyncSession, transfer_ids: Sequence[int]
) -> dict[int, list[tuple[uuid.UUID, str | None]]]:
    """The statements each transfer pays, with the number of the invoice it pays them through."""
    found: dict[int, list[tuple[uuid.UUID, str | None]]] = {}
    for part in chunks(transfer_ids):
        stmt = (
            select(col(PayoutRunStatement.transfer_id), col(PayoutRunStatement.statement_id), col(Invoice.number))
            .outerjoin(Invoice, col(Invoice.id) == col(PayoutRunStatement.invoice_id))
            .where(col(PayoutRunStatement.transfer_id).in_(part))
            .order_by(col(PayoutRunStatement.id))
        )
        for transfer_id, statement_id, number in (await session.execute(stmt)).all():
            found.setdefault(transfer_id or 0, []).append((statement_id, number))
    return found


async def run_holding(session: AsyncSession, statement_id: uuid.UUID) -> str | None:
    """The reference of the run whose transfer pays this statement now (it is `in_payment`)."""
    stmt = (
        select(col(PayoutRun.reference))
        .join(PayoutRunStatement, col(PayoutRunStatement.run_id) == col(PayoutRun.id))
        .join(PayoutTransfer, col(PayoutTransfer.id) == col(PayoutRunStatement.transfer_id))
        .where(col(PayoutRunStatement.statement_id) == statement_id, col(PayoutTransfer.status) == "pending")
    )
    return (await session.execute(stmt)).scalars().first()
