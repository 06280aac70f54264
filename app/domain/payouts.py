"""Payout runs: finance pays approved statements by SEPA credit transfer, each through the self-billed
invoice the statement gets when it first enters a run.

A run takes every approved statement due by its payment date. EUR statements of payable partners (payee
details, the self-billing agreement in force accepted, past any hold) go `in_payment`: one transfer per
partner pays its invoices' totals, to the payee details in force when the run was created (kept with the
transfer). Every other statement is listed in the run as not payable, with the reasons, and stays
approved. Finance downloads the file (or its CSV), then confirms the run executed (its statements become
`paid` under the run's reference) or, before that, marks single transfers returned by the bank (their
statements go back to `approved`, keep their invoice, and the next run pays that same invoice).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import payee as payee_repo
from app.db.repositories import payouts as repo
from app.db.repositories import statements as statements_repo
from app.db.tables import (
    Invoice,
    InvoiceDocument,
    PayeeDetails,
    PayoutRun,
    PayoutRunStatement,
    PayoutTransfer,
    Statement,
)
from app.domain import audit, events, payee, sealed, sepa, statements
from app.domain.context import Context
from app.domain.errors import Conflict, Invalid, InvalidTransition, NotFound
from app.domain.rules import invoices as invoice_rules
from app.domain.rules.names import Rule
from app.settings import Settings

CURRENCY = "EUR"
"""The one currency a run pays (SEPA credit transfers)."""


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str


@dataclass(frozen=True)
class RunView:
    run: PayoutRun
    transfers: list[PayoutTransfer]
    statements: list[PayoutRunStatement]
    invoices: dict[int, Invoice]
    documents: tuple[int, int, int]
    """The invoice documents the run issued: how many, rendered, failed at the last attempt."""


# --- creating a run ----------------------------------------------------------------------------------


async def create_run(session: AsyncSession, ctx: Context, settings: Settings, payment_date: date) -> RunView:
    """A run for `payment_date` from the approved statements due by then; refused when it would pay nothing."""
    if payment_date < ctx.now.date():
        raise Invalid(
            f"The payment date {payment_date.isoformat()} has passed; the bank executes transfers from today on.",
            code="payment_date_in_past",
            field="payment_date",
        )
    due_by = datetime(payment_date.year, payment_date.month, payment_date.day, tzinfo=UTC) + timedelta(days=1)
    candidates = await repo.lock_approved_due(session, due_by - timedelta(microseconds=1))
    run_id = uuid.uuid4()
    reference = f"PR-{payment_date:%Y%m%d}-{run_id.hex[:8].upper()}"
    listed: list[tuple[Statement, list[Reason]]] = []
    payable: dict[uuid.UUID, list[Statement]] = defaultdict(list)
    partner_ids = sorted({s.partner_id for s in candidates}, key=str)
    standings = await payee.payability_of(session, partner_ids, ctx.now)  # a partner's statements share it
    details_of = await payee_repo.details_of(session, partner_ids)
    payees: dict[uuid.UUID, tuple[PayeeDetails, str, str] | Reason] = {}
    for statement in candidates:
        reasons: list[Reason] = []
        if statement.currency != CURRENCY:
            reasons.append(
                Reason(
                    "currency_not_supported",
                    f"Runs pay {CURRENCY} by SEPA transfer; this statement is in {statement.currency}.",
                )
            )
        if statement.payable_amount <= 0:
            reasons.append(
                Reason("nothing_to_pay", "The statement's total is zero or negative: it is carried over (R16).")
            )
        reasons += [Reason(str(code), detail) for code, detail in standings[statement.partner_id].reasons]
        if not reasons:
            if statement.partner_id not in payees:
                payees[statement.partner_id] = _payee(settings, details_of.get(statement.partner_id))
            opened = payees[statement.partner_id]
            if isinstance(opened, Reason):
                reasons.append(opened)
            elif _vat(settings, opened[0]) is None:
                reasons.append(
                    Reason("vat_rate_missing", f"PARTNERS_VAT_RATES has no rate for {settings.vendor_country}.")
                )
        if reasons:
            listed.append((statement, reasons))
        else:
            payable[statement.partner_id].append(statement)
    if not payable:
        raise InvalidTransition(
            f"No statement due by {payment_date.isoformat()} can be paid: "
            + (f"{len(listed)} approved statements are not payable." if listed else "no statement is approved."),
            code="payout_run_nothing_payable",
            not_payable=[
                {"statement_id": str(s.id), "partner_id": str(s.partner_id), "reasons": [r.code for r in rs]}
                for s, rs in listed
            ],
        )
    debtor = _debtor(settings)
    run = PayoutRun(
        id=run_id,
        reference=reference,
        payment_date=payment_date,
        currency=CURRENCY,
        status="created",
        transfers=0,
        control_sum=0,
        created_at=ctx.now,
        created_by=ctx.actor,
    )
    session.add(run)
    await session.flush()
    taken = [s for statements in payable.values() for s in statements]
    paying = {p: v for p, v in payees.items() if not isinstance(v, Reason)}
    issued = await _invoices(session, ctx, settings, taken, paying, run_id)
    transfers: list[PayoutTransfer] = []
    files: list[sepa.Transfer] = []
    for index, partner_id in enumerate(sorted(payable, key=str), start=1):
        details, iban, bic = paying[partner_id]
        paid = sorted(payable[partner_id], key=lambda s: (s.quarter, s.id.hex))
        bills = [issued[s.id] for s in paid]
        transfer = PayoutTransfer(
            run_id=run_id,
            partner_id=partner_id,
            end_to_end_id=f"{reference}-{index}",
            amount=sum(b.total for b in bills),
            remittance=invoice_rules.remittance(reference, [b.number for b in bills]),
            payee_details_id=details.id or 0,
            name=details.legal_name,
            address_line1=details.address_line1,
            address_line2=details.address_line2,
            postal_code=details.postal_code,
            city=details.city,
            country=details.country,
            iban=details.iban,
            bic=details.bic,
            iban_masked=details.iban_masked,
            status="pending",
        )
        session.add(transfer)
        transfers.append(transfer)
        files.append(
            sepa.Transfer(
                end_to_end_id=transfer.end_to_end_id,
                name=details.legal_name,
                iban=iban,
                bic=bic,
                address=sepa.Address(details.address_line1, details.postal_code, details.city, details.country),
                amount=transfer.amount,
                remittance=transfer.remittance,
            )
        )
    await session.flush()
    by_partner = {t.partner_id: t for t in transfers}
    items = [_considered(run_id, s, transfer_id=by_partner[s.partner_id].id, invoice_id=issued[s.id].id) for s in taken]
    items += [_considered(run_id, s, reasons=reasons) for s, reasons in listed]
    session.add_all(items)
    moved = await repo.set_status(session, [s.id for s in taken], from_status="approved", to_status="in_payment")
    assert moved == len(taken), "the statements were locked approved"
    run.transfers = len(transfers)
    run.control_sum = sum(t.amount for t in transfers)
    run.sepa_xml = sepa.credit_transfer(reference, ctx.now, debtor, payment_date, files)
    await session.flush()
    audit.record(
        session,
        ctx,
        action="payout_run.created",
        object_type="payout_run",
        object_id=run_id,
        after={
            "reference": reference,
            "payment_date": payment_date.isoformat(),
            "transfers": run.transfers,
            "control_sum": run.control_sum,
            "statements": len(taken),
            "not_payable": len(listed),
        },
    )
    events.record(
        session,
        "payout_run.created",
        events.PayoutRunFacts(
            run_id=run_id,
            reference=reference,
            payment_date=payment_date,
            currency=CURRENCY,
            status=run.status,
            transfers=run.transfers,
            control_sum=run.control_sum,
            statements=len(taken),
            not_payable=len(listed),
        ),
        occurred_at=ctx.now,
        partner_id=None,
        subject=f"payout_run:{run_id}",
    )
    return await view(session, run_id)


def _considered(
    run_id: uuid.UUID,
    statement: Statement,
    *,
    transfer_id: int | None = None,
    invoice_id: int | None = None,
    reasons: list[Reason] | None = None,
) -> PayoutRunStatement:
    """A statement the run considered: paid by a transfer through an invoice, or not, with the reasons."""
    return PayoutRunStatement(
        run_id=run_id,
        statement_id=statement.id,
        partner_id=statement.partner_id,
        currency=statement.currency,
        payable_amount=statement.payable_amount,
        transfer_id=transfer_id,
        invoice_id=invoice_id,
        reasons=[{"code": r.code, "detail": r.detail} for r in reasons or []],
    )


def _debtor(settings: Settings) -> sepa.Debtor:
    name, iban, bic = settings.payout_debtor_name, settings.payout_debtor_iban, settings.payout_debtor_bic
    if not (name and iban and bic):
        raise Conflict(
            "The account payouts are made from is not configured: set PARTNERS_PAYOUT_DEBTOR_NAME, "
            "PARTNERS_PAYOUT_DEBTOR_IBAN and PARTNERS_PAYOUT_DEBTOR_BIC.",
            code="payout_debtor_not_configured",
        )
    address = None
    if settings.payout_debtor_country:
        address = sepa.Address(
            settings.payout_debtor_street,
            settings.payout_debtor_postal_code,
            settings.payout_debtor_city,
            settings.payout_debtor_country,
        )
    return sepa.Debtor(name=name, iban=iban.replace(" ", "").upper(), bic=bic.replace(" ", "").upper(), address=address)


def _payee(settings: Settings, details: PayeeDetails | None) -> tuple[PayeeDetails, str, str] | Reason:
    if details is None:
        return Reason("payee_details_missing", "No payee details are recorded.")
    try:
        return details, sealed.open_sealed(settings, details.iban), sealed.open_sealed(settings, details.bic)
    except InvalidToken:
        return Reason(
            "payee_details_unreadable",
            "The bank details were encrypted with a key PARTNERS_SECRETS_KEY no longer holds; "
            "the partner gives them again.",
        )


def _vat(settings: Settings, details: PayeeDetails) -> invoice_rules.Vat | None:
    try:
        return invoice_rules.vat(
            partner_country=details.country,
            vat_registered=details.vat_registered,
            vendor_country=settings.vendor_country,
            rates=settings.vat_rates,
        )
    except invoice_rules.VatRateMissing:
        return None


# --- invoices ---------------------------------------------------------------------------------------


async def _invoices(
    session: AsyncSession,
    ctx: Context,
    settings: Settings,
    taken: list[Statement],
    payees: dict[uuid.UUID, tuple[PayeeDetails, str, str]],
    run_id: uuid.UUID,
) -> dict[uuid.UUID, Invoice]:
    """Each statement's invoice: the one in force from an earlier run, or one issued now, numbered in
    order (the numbers taken at once), its document left for a worker to render."""
    have = await repo.invoices_of_statements(session, [s.id for s in taken])
    new = sorted((s for s in taken if s.id not in have), key=lambda s: (str(s.partner_id), s.quarter, s.id.hex))
    if not new:
        return have
    rules_of = await repo.commission_by_rule(session, [s.id for s in new])
    year = ctx.now.year
    first = await repo.take_invoice_sequences(session, settings.invoice_series, year, len(new))
    made: list[Invoice] = []
    for sequence, statement in enumerate(new, start=first):
        details = payees[statement.partner_id][0]
        tax = _vat(settings, details)
        assert tax is not None, "checked when the statement was found payable"
        made.append(
            _invoice(
                settings,
                ctx,
                statement,
                details,
                tax,
                invoice_rules.lines(rules_of.get(statement.id, []), statement.opening_balance, DESCRIBE),
                year=year,
                sequence=sequence,
            )
        )
    session.add_all(made)
    await session.flush()
    repo.add_documents(session, [i.id or 0 for i in made], run_id)
    for invoice in made:
        have[invoice.statement_id] = invoice
        _record_issued(session, ctx, invoice)
    return have


DESCRIBE = {rule.value: rule.summary[:1].upper() + rule.summary[1:] for rule in Rule}
"""An invoice line's description: the summary of the rule whose commission it sums."""


def _seller(details: PayeeDetails) -> dict[str, Any]:
    return {
        "legal_name": details.legal_name,
        "address_line1": details.address_line1,
        "address_line2": details.address_line2,
        "postal_code": details.postal_code,
        "city": details.city,
        "country": details.country,
        "vat_id": details.vat_id,
        "vat_registered": details.vat_registered,
    }


def _buyer(settings: Settings) -> dict[str, Any]:
    return {
        "name": settings.vendor_name,
        "address": settings.vendor_address,
        "country": settings.vendor_country,
        "vat_id": settings.vendor_vat_id,
    }


def _invoice(
    settings: Settings,
    ctx: Context,
    statement: Statement,
    details: PayeeDetails,
    tax: invoice_rules.Vat,
    made: list[invoice_rules.InvoiceLine],
    *,
    year: int,
    sequence: int,
) -> Invoice:
    net = sum(line.amount for line in made)
    assert net == statement.payable_amount, "a payable statement's lines add up to what it pays"
    amount = invoice_rules.vat_amount(net, tax.rate_bp)
    return Invoice(
        number=f"{settings.invoice_series}-{year}-{sequence:06d}",
        series=settings.invoice_series,
        year=year,
        sequence=sequence,
        kind="invoice",
        statement_id=statement.id,
        partner_id=statement.partner_id,
        quarter=statement.quarter,
        currency=statement.currency,
        issued_at=ctx.now,
        seller=_seller(details),
        buyer=_buyer(settings),
        lines=[{"rule": x.rule, "description": x.description, "amount": x.amount} for x in made],
        net=net,
        vat_treatment=tax.treatment.value,
        vat_rate_bp=tax.rate_bp,
        vat_amount=amount,
        total=net + amount,
        mentions=[
            *([tax.mention] if tax.mention else []),
            invoice_rules.SELF_BILLING_MENTION,
            f"Statement {statement.id}, quarter {statement.quarter}.",
        ],
    )


def _record_issued(session: AsyncSession, ctx: Context, invoice: Invoice, *, credits_number: str | None = None) -> None:
    events.record(
        session,
        "invoice.issued",
        events.InvoiceIssued(
            invoice_id=invoice.id or 0,
            number=invoice.number,
            kind="credit_note" if invoice.kind == "credit_note" else "invoice",
            credits_number=credits_number,
            partner_id=invoice.partner_id,
            statement_id=invoice.statement_id,
            quarter=invoice.quarter,
            currency=invoice.currency,
            net=invoice.net,
            vat_rate_bp=invoice.vat_rate_bp,
            vat_amount=invoice.vat_amount,
            total=invoice.total,
            issued_at=invoice.issued_at,
        ),
        occurred_at=ctx.now,
        partner_id=invoice.partner_id,
        subject=f"invoice:{invoice.id}",
        refs={"statement_id": invoice.statement_id},
    )


@dataclass(frozen=True)
class InvoiceView:
    invoice: Invoice
    credits_number: str | None
    """A credit note's: the number of the invoice it credits."""
    credited_by: str | None
    """An invoice's: the number of the credit note that credits it."""
    document: InvoiceDocument | None


async def invoices(
    session: AsyncSession,
    limit: int,
    *,
    partner_id: uuid.UUID | None = None,
    before: tuple[datetime, int] | None = None,
) -> list[InvoiceView]:
    """Invoices and credit notes, newest first, of one partner or of all."""
    rows = list(await repo.invoices(session, limit, partner_id=partner_id, before=before))
    return await _views(session, rows)


async def _views(session: AsyncSession, rows: list[Invoice]) -> list[InvoiceView]:
    ids = [r.id or 0 for r in rows]
    credited = await repo.invoices_by_id(session, [r.credits_id for r in rows if r.credits_id is not None])
    notes = await repo.credit_notes_of(session, ids)
    documents = await repo.documents(session, ids)
    return [
        InvoiceView(
            row,
            credited[row.credits_id].number if row.credits_id is not None else None,
            notes[row.id or 0].number if (row.id or 0) in notes else None,
            documents.get(row.id or 0),
        )
        for row in rows
    ]


async def invoice(session: AsyncSession, invoice_id: int, *, partner_id: uuid.UUID | None = None) -> InvoiceView:
    """One invoice or credit note; of this partner when `partner_id` is given."""
    row = await repo.invoice(session, invoice_id)
    if row is None or (partner_id is not None and row.partner_id != partner_id):
        whose = " of this partner" if partner_id is not None else ""
        raise NotFound(f"No invoice {invoice_id}{whose}.", code="invoice_not_found")
    return (await _views(session, [row]))[0]


async def invoice_pdf(
    session: AsyncSession, invoice_id: int, *, partner_id: uuid.UUID | None = None
) -> tuple[Invoice, bytes]:
    """The invoice's PDF/A-3 as rendered once after issue; refused while a worker has yet to render it."""
    view = await invoice(session, invoice_id, partner_id=partner_id)
    document = await repo.document(session, invoice_id)
    if document is None or document.pdf is None:
        failed = (
            f" The last attempt failed ({document.error}); it is tried again." if document and document.error else ""
        )
        raise InvalidTransition(
            f"The document of invoice {view.invoice.number} is not rendered yet: a worker renders it after issue."
            + failed,
            code="invoice_document_not_ready",
        )
    return view.invoice, document.pdf


async def credit(
    session: AsyncSession, ctx: Context, settings: Settings, invoice_id: int, *, reason: str
) -> InvoiceView:
    """Correct an issued invoice: a credit note of all of it, in the same series, and the statement
    gets a new invoice. A statement not paid yet (returned by the bank) gets it from the next run that
    pays it; a paid one gets it now, from the payee details in force, and only if its total is the
    total paid (a correction that changes what is owed is settled outside the service). Refused while
    a transfer pays the invoice."""
    view = await invoice(session, invoice_id)
    row = view.invoice
    if row.kind == "credit_note":
        raise InvalidTransition(
            f"{row.number} is a credit note; a credit note is not credited.", code="invoice_is_credit_note"
        )
    await statements_repo.lock(session, [row.statement_id])
    if view.credited_by is not None or await repo.credit_note_of(session, invoice_id) is not None:
        raise InvalidTransition(
            f"Invoice {row.number} is credited already ({view.credited_by}).", code="invoice_already_credited"
        )
    statement = (await repo.statements(session, [row.statement_id]))[0]
    if statement.status == "in_payment":
        holding = await repo.run_holding(session, statement.id)
        raise InvalidTransition(
            f"Payout run {holding} pays invoice {row.number} now: mark its transfer returned, or confirm the run, "
            "before correcting it.",
            code="invoice_in_payment",
        )
    replacement: Invoice | None = None
    if statement.status == "paid":
        details = (await payee_repo.details_of(session, [row.partner_id])).get(row.partner_id)
        tax = _vat(settings, details) if details is not None else None
        if details is None or tax is None:
            raise InvalidTransition(
                f"Statement {statement.id} is paid: its new invoice is issued now, and needs the partner's payee "
                "details and a VAT rate for them.",
                code="invoice_correction_not_issuable",
            )
        lines = [invoice_rules.InvoiceLine(x["rule"], x["description"], x["amount"]) for x in row.lines]
        replacement = _invoice(settings, ctx, statement, details, tax, lines, year=ctx.now.year, sequence=0)
        if replacement.total != row.total:
            raise InvalidTransition(
                f"Statement {statement.id} is paid {_money(row.total)} under invoice {row.number}; corrected, it "
                f"would total {_money(replacement.total)}. A correction that changes what is owed is settled "
                "outside the service.",
                code="invoice_correction_changes_total",
            )
    count = 2 if replacement is not None else 1
    first = await repo.take_invoice_sequences(session, settings.invoice_series, ctx.now.year, count)
    note = Invoice(
        number=f"{settings.invoice_series}-{ctx.now.year}-{first:06d}",
        series=settings.invoice_series,
        year=ctx.now.year,
        sequence=first,
        kind="credit_note",
        credits_id=row.id,
        reason=reason,
        statement_id=row.statement_id,
        partner_id=row.partner_id,
        quarter=row.quarter,
        currency=row.currency,
        issued_at=ctx.now,
        seller=row.seller,
        buyer=row.buyer,
        lines=row.lines,
        net=row.net,
        vat_treatment=row.vat_treatment,
        vat_rate_bp=row.vat_rate_bp,
        vat_amount=row.vat_amount,
        total=row.total,
        mentions=[m for m in row.mentions if not m.startswith("Statement ")]
        + [f"Credits invoice {row.number} in full: {reason}", f"Statement {row.statement_id}, quarter {row.quarter}."],
    )
    made = [note]
    if replacement is not None:
        replacement.sequence = first + 1
        replacement.number = f"{settings.invoice_series}-{ctx.now.year}-{first + 1:06d}"
        replacement.mentions = [*replacement.mentions, f"Replaces invoice {row.number}."]
        made.append(replacement)
    session.add_all(made)
    await session.flush()
    repo.add_documents(session, [i.id or 0 for i in made], None)
    for issued in made:
        _record_issued(session, ctx, issued, credits_number=row.number if issued is note else None)
    audit.record(
        session,
        ctx,
        action="invoice.credited",
        object_type="invoice",
        object_id=row.id,
        after={
            "credit_note": note.number,
            "replacement": replacement.number if replacement is not None else None,
            "reason": reason,
        },
    )
    return (await _views(session, [note]))[0]


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


@dataclass(frozen=True)
class Payout:
    transfer: PayoutTransfer
    run: PayoutRun
    paid: list[tuple[uuid.UUID, str | None]]
    """The statements the transfer pays, each with its invoice's number."""


async def partner_payouts(
    session: AsyncSession, partner_id: uuid.UUID, limit: int, before: int | None = None
) -> list[Payout]:
    """The partner's payouts: every transfer of a run to it, newest first."""
    rows = await repo.partner_transfers(session, partner_id, limit, before)
    paid = await repo.paid_by_transfers(session, [t.id or 0 for t, _ in rows])
    return [Payout(t, r, paid.get(t.id or 0, [])) for t, r in rows]


# --- reading, confirming, returns ---------------------------------------------------------------------


async def view(session: AsyncSession, run_id: uuid.UUID) -> RunView:
    run = await repo.run(session, run_id)
    if run is None:
        raise NotFound(f"No payout run {run_id}.", code="payout_run_not_found")
    items = list(await repo.run_statements(session, run_id))
    have = await repo.invoices_by_id(session, [i.invoice_id for i in items if i.invoice_id is not None])
    return RunView(
        run,
        list(await repo.transfers(session, run_id)),
        items,
        have,
        await repo.documents_progress(session, run_id),
    )


async def documents_progress(session: AsyncSession, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int, int]]:
    """Each run's invoice documents: issued, rendered, failed at the last attempt."""
    return await repo.documents_progress_of(session, run_ids)


async def runs(session: AsyncSession, limit: int, before: tuple[datetime, uuid.UUID] | None = None) -> list[PayoutRun]:
    """Runs, newest first; after a page, those before its last (`before`: its created_at and id)."""
    return list(await repo.runs(session, limit, before))


async def open_bank_details(settings: Settings, transfer: PayoutTransfer) -> tuple[str, str]:
    """The transfer's IBAN and BIC in clear (the run's CSV)."""
    return sealed.open_sealed(settings, transfer.iban), sealed.open_sealed(settings, transfer.bic)


async def confirm(session: AsyncSession, ctx: Context, run_id: uuid.UUID) -> RunView:
    """Finance confirms the bank executed the run: the statements its transfers (those not returned)
    pay become `paid` under the run's reference. Confirming twice changes nothing."""
    run = await repo.run(session, run_id, for_update=True)
    if run is None:
        raise NotFound(f"No payout run {run_id}.", code="payout_run_not_found")
    if run.status == "executed":
        return await view(session, run_id)
    transfers = await repo.transfers(session, run_id, for_update=True)
    pending = {t.id for t in transfers if t.status == "pending"}
    items = [i for i in await repo.run_statements(session, run_id) if i.transfer_id in pending]
    await statements_repo.lock(session, [i.statement_id for i in items])
    paid_at = datetime(run.payment_date.year, run.payment_date.month, run.payment_date.day, tzinfo=UTC)
    moved = await repo.set_status(
        session,
        [i.statement_id for i in items],
        from_status="in_payment",
        to_status="paid",
        paid_at=paid_at,
        reference=run.reference,
    )
    assert moved == len(items), "a pending transfer's statements are in payment"
    for transfer in transfers:
        if transfer.status == "pending":
            transfer.status = "executed"
    run.status, run.executed_at, run.executed_by = "executed", ctx.now, ctx.actor
    await session.flush()
    for statement in await repo.statements(session, [i.statement_id for i in items]):
        statements.record_event(session, "statement.paid", statement, ctx.now, refs={"payout_run_id": run_id})
    returned = sum(1 for t in transfers if t.status == "returned")
    audit.record(
        session,
        ctx,
        action="payout_run.executed",
        object_type="payout_run",
        object_id=run_id,
        before={"status": "created"},
        after={"status": "executed", "statements_paid": len(items), "transfers_returned": returned},
    )
    events.record(
        session,
        "payout_run.executed",
        events.PayoutRunFacts(
            run_id=run_id,
            reference=run.reference,
            payment_date=run.payment_date,
            currency=run.currency,
            status=run.status,
            transfers=run.transfers,
            control_sum=run.control_sum,
            statements=len(items),
            not_payable=0,
            returned=returned,
        ),
        occurred_at=ctx.now,
        partner_id=None,
        subject=f"payout_run:{run_id}",
    )
    return await view(session, run_id)


async def return_transfer(
    session: AsyncSession, ctx: Context, run_id: uuid.UUID, transfer_id: int, *, reason: str
) -> RunView:
    """The bank returned one transfer of a run not yet confirmed: the statements it paid go back to
    `approved`, keeping their invoice, for a later run. Returning it twice changes nothing."""
    run = await repo.run(session, run_id, for_update=True)
    if run is None:
        raise NotFound(f"No payout run {run_id}.", code="payout_run_not_found")
    transfer = next((t for t in await repo.transfers(session, run_id, for_update=True) if t.id == transfer_id), None)
    if transfer is None:
        raise NotFound(f"No transfer {transfer_id} in payout run {run.reference}.", code="payout_transfer_not_found")
    if transfer.status == "returned":
        return await view(session, run_id)
    if run.status != "created":
        raise InvalidTransition(
            f"Payout run {run.reference} was confirmed executed: its statements are paid.",
            code="payout_run_executed",
        )
    items = [i for i in await repo.run_statements(session, run_id) if i.transfer_id == transfer_id]
    await statements_repo.lock(session, [i.statement_id for i in items])
    moved = await repo.set_status(
        session, [i.statement_id for i in items], from_status="in_payment", to_status="approved"
    )
    assert moved == len(items), "a pending transfer's statements are in payment"
    transfer.status, transfer.returned_at, transfer.return_reason = "returned", ctx.now, reason
    await session.flush()
    have = await repo.invoices_of_statements(session, [i.statement_id for i in items])
    for statement in await repo.statements(session, [i.statement_id for i in items]):
        events.record(
            session,
            "statement.returned",
            events.StatementReturned(
                statement_id=statement.id,
                partner_id=statement.partner_id,
                quarter=statement.quarter,
                currency=statement.currency,
                status=statement.status,
                payable_amount=statement.payable_amount,
                run_id=run_id,
                run_reference=run.reference,
                invoice_number=have[statement.id].number if statement.id in have else None,
                reason=reason,
            ),
            occurred_at=ctx.now,
            partner_id=statement.partner_id,
            subject=f"statement:{statement.id}",
            refs={"payout_run_id": run_id, "payout_transfer_id": transfer_id},
        )
    audit.record(
        session,
        ctx,
        action="payout_transfer.returned",
        object_type="payout_run",
        object_id=run_id,
        before={"transfer": transfer_id, "status": "pending"},
        after={"transfer": transfer_id, "status": "returned", "reason": reason, "statements": len(items)},
    )
    return await view(session, run_id)


def csv_rows(view: RunView, clear: dict[int, tuple[str, str]]) -> list[list[Any]]:
    """One row per transfer: who is paid, to which account, how much, for which invoices."""
    return [
        [
            view.run.reference,
            view.run.payment_date.isoformat(),
            t.end_to_end_id,
            t.partner_id,
            t.name,
            clear[t.id or 0][0],
            clear[t.id or 0][1],
            t.country,
            f"{t.amount // 100}.{t.amount % 100:02d}",
            view.run.currency,
            t.remittance,
            t.status,
        ]
        for t in view.transfers
    ]
