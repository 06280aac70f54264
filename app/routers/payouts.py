"""Payout runs (SEPA credit transfers of approved statements) and the partners' self-billed invoices."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import tables
from app.domain import payouts
from app.errors import problem_responses
from app.routers import convert
from app.routers.csv_export import CSV_RESPONSE, csv_response
from app.routers.deps import AdminRead, AdminWrite, ClockDep, PartnerOrAdminRead, SessionDep, SettingsDep, context
from app.routers.fields import Cursor, PartnerPath, page_size
from app.routers.idempotency import IdempotencyDep
from app.routers.schemas.payouts import (
    CreditNoteRequest,
    DocumentProgress,
    InvoiceDocumentOut,
    InvoiceLineOut,
    InvoiceList,
    InvoiceOut,
    NotPayable,
    PaidStatement,
    PartnerPayoutList,
    PartnerPayoutOut,
    PayoutRunList,
    PayoutRunOut,
    PayoutRunRequest,
    PayoutRunStatementOut,
    PayoutRunSummary,
    PayoutTransferOut,
    TransferReturn,
)

router = APIRouter(prefix="/v1", tags=["payouts"])
RunPath = Annotated[uuid.UUID, Path(description="The payout run's id.")]
TransferPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="The transfer's id, as the run lists it.")]
InvoicePath = Annotated[int, Path(ge=1, le=2**63 - 1, description="The invoice's id, as the list gives it.")]
XML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "pain.001.001.09"}
}
CSV_COLUMNS = (
    "run_reference",
    "payment_date",
    "end_to_end_id",
    "partner_id",
    "name",
    "iban",
    "bic",
    "country",
    "amount",
    "currency",
    "remittance",
    "status",
)


def _summary(run: tables.PayoutRun, documents: tuple[int, int, int]) -> PayoutRunSummary:
    issued, rendered, failed = documents
    return PayoutRunSummary(
        invoice_documents=DocumentProgress(issued=issued, rendered=rendered, failed=failed),
        id=run.id,
        reference=run.reference,
        payment_date=run.payment_date,
        currency=run.currency,
        status="executed" if run.status == "executed" else "created",
        transfers=run.transfers,
        control_sum=run.control_sum,
        created_at=run.created_at,
        executed_at=run.executed_at,
    )


def _run(view: payouts.RunView) -> PayoutRunOut:
    return PayoutRunOut(
        **_summary(view.run, view.documents).model_dump(),
        transfer_list=[PayoutTransferOut.model_validate(t, from_attributes=True) for t in view.transfers],
        statements=[
            PayoutRunStatementOut(
                statement_id=i.statement_id,
                partner_id=i.partner_id,
                currency=i.currency,
                payable_amount=i.payable_amount,
                transfer_id=i.transfer_id,
                invoice_number=view.invoices[i.invoice_id].number if i.invoice_id is not None else None,
                invoice_total=view.invoices[i.invoice_id].total if i.invoice_id is not None else None,
                not_payable_because=[NotPayable(code=r["code"], detail=r["detail"]) for r in i.reasons],
            )
            for i in view.statements
        ],
    )


def _invoice(view: payouts.InvoiceView) -> InvoiceOut:
    row, document = view.invoice, view.document
    state: Literal["pending", "rendered", "failed"] = "pending"
    if document is not None and document.rendered_at is not None:
        state = "rendered"
    elif document is not None and document.error:
        state = "failed"
    return InvoiceOut(
        id=row.id or 0,
        number=row.number,
        kind="credit_note" if row.kind == "credit_note" else "invoice",
        credits_number=view.credits_number,
        credited_by=view.credited_by,
        reason=row.reason,
        document=InvoiceDocumentOut(
            status=state,
            rendered_at=document.rendered_at if document is not None else None,
            sha256=document.sha256 if document is not None else None,
            error=document.error if document is not None and state != "rendered" else None,
        ),
        partner_id=row.partner_id,
        statement_id=row.statement_id,
        quarter=row.quarter,
        currency=row.currency,
        issued_at=row.issued_at,
        seller=row.seller,
        buyer=row.buyer,
        lines=[InvoiceLineOut(**line) for line in row.lines],
        net=row.net,
        vat_treatment=row.vat_treatment,
        vat_rate_bp=row.vat_rate_bp,
        vat_amount=row.vat_amount,
        total=row.total,
        mentions=row.mentions,
    )


@router.post(
    "/payout-runs",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
    summary="Create a payout run",
)
async def create_payout_run(
    body: PayoutRunRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> PayoutRunOut:
    """Admin (write). Takes the approved statements due by `payment_date`: EUR statements of payable
    partners go `in_payment`, each with its self-billed invoice, one transfer per partner paying its
    invoices' totals; every other statement is listed with why it is not payable. Refused (409
    `payout_run_nothing_payable`) when nothing can be paid. Accepts `Idempotency-Key`."""

    async def work() -> PayoutRunOut:
        ctx = context(request, admin, clock)
        return _run(await payouts.create_run(session, ctx, settings, body.payment_date))

    return await idempotency.respond(session, 201, work)


@router.get("/payout-runs", responses=problem_responses(401, 403, 422), summary="Payout runs")
async def list_payout_runs(
    session: SessionDep, _admin: AdminRead, limit: Annotated[int, page_size(1000)] = 100, cursor: Cursor = None
) -> PayoutRunList:
    """Admin (read). Newest first, a page at a time (`next_cursor`)."""
    rows = await payouts.runs(session, limit + 1, convert.decode_time_id_cursor(cursor))
    page = rows[:limit]
    progress = await payouts.documents_progress(session, [r.id for r in page])
    return PayoutRunList(
        items=[_summary(r, progress.get(r.id, (0, 0, 0))) for r in page],
        next_cursor=convert.encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


@router.get("/payout-runs/{run_id}", responses=problem_responses(401, 403, 404, 422), summary="Read a payout run")
async def get_payout_run(run_id: RunPath, session: SessionDep, _admin: AdminRead) -> PayoutRunOut:
    """Admin (read). Its transfers and every statement it considered, with why one is not payable."""
    return _run(await payouts.view(session, run_id))


@router.get(
    "/payout-runs/{run_id}/sepa.xml",
    responses={**XML_RESPONSE, **problem_responses(401, 403, 404, 422)},
    response_class=Response,
    summary="Download a payout run's SEPA file",
)
async def get_payout_run_sepa(run_id: RunPath, session: SessionDep, _admin: AdminRead) -> Response:
    """Admin (read). The `pain.001.001.09` credit-transfer file made when the run was created, validated
    against its schema; send it to the bank."""
    view = await payouts.view(session, run_id)
    return Response(
        content=view.run.sepa_xml or "",
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{view.run.reference}.xml"'},
    )


@router.get(
    "/payout-runs/{run_id}/transfers.csv",
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 404, 422)},
    response_class=PlainTextResponse,
    summary="Download a payout run's transfers (CSV)",
)
async def get_payout_run_csv(
    run_id: RunPath, session: SessionDep, settings: SettingsDep, _admin: AdminRead
) -> PlainTextResponse:
    """Admin (read). One row per transfer, with the account in full, for banks or tools without SEPA."""
    view = await payouts.view(session, run_id)
    clear = {t.id or 0: await payouts.open_bank_details(settings, t) for t in view.transfers}
    return csv_response(CSV_COLUMNS, payouts.csv_rows(view, clear), f"{view.run.reference}.csv")


@router.post(
    "/payout-runs/{run_id}/confirm",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Confirm a payout run executed",
)
async def confirm_payout_run(
    run_id: RunPath,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> PayoutRunOut:
    """Admin (write). The bank executed the run: the statements its transfers pay (returned ones left
    out) become `paid` under the run's reference. Confirming again changes nothing. Accepts
    `Idempotency-Key`."""

    async def work() -> PayoutRunOut:
        return _run(await payouts.confirm(session, context(request, admin, clock), run_id))

    return await idempotency.respond(session, 200, work)


@router.post(
    "/payout-runs/{run_id}/transfers/{transfer_id}/return",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Mark a transfer returned by the bank",
)
async def return_payout_transfer(
    run_id: RunPath,
    transfer_id: TransferPath,
    body: TransferReturn,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> PayoutRunOut:
    """Admin (write). Before the run is confirmed: the statements the transfer paid go back to
    `approved` with the reason, keep their invoice, and the next run pays it. Accepts `Idempotency-Key`."""

    async def work() -> PayoutRunOut:
        ctx = context(request, admin, clock)
        return _run(await payouts.return_transfer(session, ctx, run_id, transfer_id, reason=body.reason))

    return await idempotency.respond(session, 200, work)


PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The PDF/A-3 with its EN 16931 XML embedded (Factur-X).",
    }
}


def _pdf(row: tables.Invoice, pdf: bytes) -> Response:
    return Response(
        content=pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{row.number}.pdf"',
            "Cache-Control": "private, max-age=31536000, immutable",
        },
    )


def _invoices(views: list[payouts.InvoiceView], limit: int) -> InvoiceList:
    page = views[:limit]
    more = len(views) > limit
    return InvoiceList(
        items=[_invoice(v) for v in page],
        next_cursor=convert.encode_cursor(page[-1].invoice.issued_at, page[-1].invoice.id) if more else None,
        has_more=more,
    )


@router.get(
    "/partners/{partner_id}/invoices",
    responses=problem_responses(401, 403, 404, 422),
    summary="A partner's invoices",
)
async def list_partner_invoices(
    partner_id: PartnerPath,
    session: SessionDep,
    _caller: PartnerOrAdminRead,
    limit: Annotated[int, page_size(1000)] = 100,
    cursor: Cursor = None,
) -> InvoiceList:
    """The partner itself or an admin (read). The self-billed invoices and credit notes issued in its
    name, newest first, a page at a time."""
    before = convert.decode_time_int_cursor(cursor)
    return _invoices(await payouts.invoices(session, limit + 1, partner_id=partner_id, before=before), limit)


@router.get(
    "/partners/{partner_id}/invoices/{invoice_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="Read an invoice",
)
async def get_partner_invoice(
    partner_id: PartnerPath, invoice_id: InvoicePath, session: SessionDep, _caller: PartnerOrAdminRead
) -> InvoiceOut:
    """The partner itself or an admin (read). The invoice as issued: seller, buyer, lines, VAT, mentions."""
    return _invoice(await payouts.invoice(session, invoice_id, partner_id=partner_id))


@router.get(
    "/partners/{partner_id}/invoices/{invoice_id}/pdf",
    responses={**PDF_RESPONSE, **problem_responses(401, 403, 404, 409, 422)},
    response_class=Response,
    summary="Download an invoice's PDF",
)
async def get_partner_invoice_pdf(
    partner_id: PartnerPath, invoice_id: InvoicePath, session: SessionDep, _caller: PartnerOrAdminRead
) -> Response:
    """The partner itself or an admin (read). The PDF/A-3 (Factur-X: the EN 16931 XML embedded) as
    rendered once after issue. 409 `invoice_document_not_ready` until a worker has rendered it."""
    return await invoice_pdf(session, partner_id, invoice_id)


async def invoice_pdf(session: AsyncSession, partner_id: uuid.UUID, invoice_id: int) -> Response:
    """A partner's invoice as PDF; another partner's is not found (the API's and the portal's download)."""
    return _pdf(*await payouts.invoice_pdf(session, invoice_id, partner_id=partner_id))


@router.get(
    "/partners/{partner_id}/payouts",
    responses=problem_responses(401, 403, 404, 422),
    summary="A partner's payouts",
)
async def list_partner_payouts(
    partner_id: PartnerPath,
    session: SessionDep,
    _caller: PartnerOrAdminRead,
    limit: Annotated[int, page_size(1000)] = 100,
    cursor: Cursor = None,
) -> PartnerPayoutList:
    """The partner itself or an admin (read). Every transfer a payout run made (or makes) to the
    partner, newest first: when, how much, to which account (masked), for which statements and
    invoices, and whether the bank executed or returned it."""
    rows = await payouts.partner_payouts(session, partner_id, limit + 1, convert.decode_int_cursor(cursor))
    page = rows[:limit]
    return PartnerPayoutList(
        items=[
            PartnerPayoutOut(
                transfer_id=p.transfer.id or 0,
                run_reference=p.run.reference,
                payment_date=p.run.payment_date,
                currency=p.run.currency,
                amount=p.transfer.amount,
                remittance=p.transfer.remittance,
                iban_masked=p.transfer.iban_masked,
                status=cast(Literal["pending", "executed", "returned"], p.transfer.status),
                returned_at=p.transfer.returned_at,
                return_reason=p.transfer.return_reason,
                statements=[PaidStatement(statement_id=s, invoice_number=n) for s, n in p.paid],
            )
            for p in page
        ],
        next_cursor=convert.encode_cursor(page[-1].transfer.id) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


@router.get("/invoices", responses=problem_responses(401, 403, 422), summary="All invoices")
async def list_invoices(
    session: SessionDep,
    _admin: AdminRead,
    partner_id: Annotated[uuid.UUID | None, Query(description="Only this partner's.")] = None,
    limit: Annotated[int, page_size(1000)] = 100,
    cursor: Cursor = None,
) -> InvoiceList:
    """Admin (read). Every partner's invoices and credit notes, newest first, a page at a time."""
    before = convert.decode_time_int_cursor(cursor)
    return _invoices(await payouts.invoices(session, limit + 1, partner_id=partner_id, before=before), limit)


@router.get("/invoices/{invoice_id}", responses=problem_responses(401, 403, 404, 422), summary="Read any invoice")
async def get_invoice(invoice_id: InvoicePath, session: SessionDep, _admin: AdminRead) -> InvoiceOut:
    """Admin (read). An invoice or credit note of any partner."""
    return _invoice(await payouts.invoice(session, invoice_id))


@router.get(
    "/invoices/{invoice_id}/pdf",
    responses={**PDF_RESPONSE, **problem_responses(401, 403, 404, 409, 422)},
    response_class=Response,
    summary="Download any invoice's PDF",
)
async def get_invoice_pdf(invoice_id: InvoicePath, session: SessionDep, _admin: AdminRead) -> Response:
    """Admin (read). As the partner's download: 409 `invoice_document_not_ready` until rendered."""
    return _pdf(*await payouts.invoice_pdf(session, invoice_id))


@router.post(
    "/invoices/{invoice_id}/credit-note",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Correct an invoice by a credit note",
)
async def credit_invoice(
    invoice_id: InvoicePath,
    body: CreditNoteRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> InvoiceOut:
    """Admin (write). Issues a credit note of the whole invoice, in the same series, with the reason.
    The statement gets a new invoice: from its next payout run when it is not paid yet; at once when it
    is paid, from the payee details in force, and only if the total stays what was paid (409
    `invoice_correction_changes_total`). Refused while a payout run pays the invoice (409
    `invoice_in_payment`), for a credit note, or for an invoice credited already. Accepts `Idempotency-Key`."""

    async def work() -> InvoiceOut:
        ctx = context(request, admin, clock)
        return _invoice(await payouts.credit(session, ctx, settings, invoice_id, reason=body.reason))

    return await idempotency.respond(session, 201, work)
