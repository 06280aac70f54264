"""API schemas — payout runs, their transfers and statements, and self-billed invoices."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.routers.fields import NONBLANK_TEXT_PATTERN, strip_nonblank
from app.routers.schemas.common import RequestModel, request_examples


class PayoutRunRequest(RequestModel):
    model_config = request_examples({"payment_date": "2026-04-25"})

    payment_date: date = Field(
        description="When the bank is to execute the transfers; the run takes the approved statements due by then."
    )


class TransferReturn(RequestModel):
    model_config = request_examples({"reason": "AC04 account closed"})

    reason: Annotated[
        str,
        StringConstraints(min_length=1, max_length=500, pattern=NONBLANK_TEXT_PATTERN),
        AfterValidator(strip_nonblank),
    ] = Field(description="Why the bank returned the transfer (its return code and text).")


class NotPayable(BaseModel):
    code: str = Field(
        description="`currency_not_supported`, `nothing_to_pay`, `payee_details_missing`, `payouts_held`, "
        "`self_billing_not_published`, `self_billing_not_accepted`, `self_billing_outdated`, "
        "`payee_details_unreadable` or `vat_rate_missing`."
    )
    detail: str = Field(description="A sentence for people.")


class PayoutRunStatementOut(BaseModel):
    statement_id: uuid.UUID = Field(description="The statement's id, as the statements lists give it.")
    partner_id: uuid.UUID = Field(description="The partner the statement is for.")
    currency: str = Field(description="ISO 4217; runs pay EUR.")
    payable_amount: int = Field(description="The statement's payable amount, minor units (before VAT).")
    transfer_id: int | None = Field(description="The transfer that pays it; null when it is not payable in this run.")
    invoice_number: str | None = Field(description="Its invoice, which the transfer pays; null when not payable.")
    invoice_total: int | None = Field(description="The invoice's total (VAT included where it applies), minor units.")
    not_payable_because: list[NotPayable] = Field(description="Why it is not paid by this run; empty when it is.")


class PayoutTransferOut(BaseModel):
    id: int = Field(description="The transfer's id within the service (the `transfer_id` a return names).")
    partner_id: uuid.UUID = Field(description="The partner paid.")
    end_to_end_id: str = Field(description="The transfer's end-to-end id in the SEPA file.")
    amount: int = Field(description="Minor units: the sum of the totals of the invoices it pays.")
    remittance: str = Field(description="The remittance text: the invoice numbers, or a reference to the run.")
    name: str = Field(description="The payee's legal name as it was when the run was created.")
    iban_masked: str = Field(description="The account paid, masked (`DE…3000`).")
    country: str = Field(description="The payee's country (ISO 3166-1 alpha-2) as it was when the run was created.")
    status: Literal["pending", "executed", "returned"] = Field(
        description="`pending` until the run is confirmed executed; `returned` when the bank returned it."
    )
    returned_at: datetime | None = Field(description="When it was marked returned; null otherwise.")
    return_reason: str | None = Field(description="Why the bank returned it; null otherwise.")


class DocumentProgress(BaseModel):
    issued: int = Field(
        description="Invoices the run issued (one a returned statement kept counts for the run that issued it)."
    )
    rendered: int = Field(description="Of those, the invoices whose PDF a worker has rendered.")
    failed: int = Field(description="Of those not rendered, the ones whose last attempt failed (tried again).")


class PayoutRunSummary(BaseModel):
    id: uuid.UUID = Field(description="The run's id.")
    reference: str = Field(description="The SEPA file's message id, and the payment reference of the statements paid.")
    payment_date: date = Field(description="When the bank is to execute the transfers.")
    currency: str = Field(description="ISO 4217: EUR (SEPA).")
    status: Literal["created", "executed"] = Field(
        description="`created` until finance confirms the bank executed the file, then `executed`."
    )
    transfers: int = Field(description="How many transfers the file holds.")
    control_sum: int = Field(description="The sum of the transfers, minor units.")
    invoice_documents: DocumentProgress = Field(
        description="The progress of the PDFs of the invoices the run issued, rendered by the workers after it "
        "was created: read it here, or in the list of runs, while they render."
    )
    created_at: datetime = Field(description="When the run was created.")
    executed_at: datetime | None = Field(description="When it was confirmed executed; null until then.")


class PayoutRunOut(PayoutRunSummary):
    transfer_list: list[PayoutTransferOut] = Field(description="One transfer per partner paid.")
    statements: list[PayoutRunStatementOut] = Field(
        description="Every statement the run considered: paid by a transfer, or not payable with the reasons."
    )


class PayoutRunList(BaseModel):
    items: list[PayoutRunSummary] = Field(description="Runs, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    has_more: bool = Field(description="Whether another page follows.")


class InvoiceLineOut(BaseModel):
    rule: str | None = Field(description="The commission rule (`R11`...); null for a balance carried.")
    description: str = Field(description="What the line is for, in words.")
    amount: int = Field(description="Minor units, before VAT.")


class InvoiceDocumentOut(BaseModel):
    status: Literal["pending", "rendered", "failed"] = Field(
        description="`pending` until a worker renders the PDF after issue; `failed` when the last attempt failed "
        "(it is tried again); `rendered` once the PDF is kept, never to change."
    )
    rendered_at: datetime | None = Field(description="When the PDF was rendered.")
    sha256: str | None = Field(description="The SHA-256 of the PDF, hex: it never changes once rendered.")
    error: str | None = Field(description="Why the last attempt to render it failed, while it is not rendered.")


class InvoiceOut(BaseModel):
    id: int = Field(description="The invoice's id within the service.")
    number: str = Field(description="`<series>-<year>-<sequence>`: numbered without gaps per year.")
    kind: Literal["invoice", "credit_note"] = Field(
        description="`invoice`, or `credit_note`: a correction crediting an invoice in full, in the same series."
    )
    credits_number: str | None = Field(description="A credit note's: the number of the invoice it credits.")
    credited_by: str | None = Field(
        description="An invoice's: the number of the credit note that credits it (the statement then has a new "
        "invoice, or gets one from its next payout run)."
    )
    reason: str | None = Field(description="A credit note's: why the invoice was corrected.")
    document: InvoiceDocumentOut = Field(
        description="Its PDF/A-3 (Factur-X, EN 16931 XML embedded), downloaded from `.../pdf` once rendered."
    )
    partner_id: uuid.UUID = Field(description="The partner in whose name it is issued (the seller).")
    statement_id: uuid.UUID = Field(description="The statement it invoices.")
    quarter: str = Field(description="The statement's quarter (`2026-Q1`).")
    currency: str = Field(description="ISO 4217.")
    issued_at: datetime = Field(description="When it was issued (when its statement entered a payout run).")
    seller: dict[str, str | bool | None] = Field(description="The partner, as it stood when the invoice was issued.")
    buyer: dict[str, str | None] = Field(description="The vendor.")
    lines: list[InvoiceLineOut] = Field(description="One per kind of commission, then a balance carried, if any.")
    net: int = Field(description="The lines' sum, minor units, before VAT.")
    vat_treatment: Literal["domestic", "reverse_charge", "outside_eu", "not_registered"] = Field(
        description="`domestic`: VAT of the vendor's country charged; `reverse_charge`: a VAT-registered partner "
        "elsewhere in the EU; `outside_eu`: outside the scope of EU VAT; `not_registered`: no VAT."
    )
    vat_rate_bp: int | None = Field(description="Basis points (2000: 20 %) when VAT is charged.")
    vat_amount: int = Field(description="Minor units; 0 when no VAT is charged.")
    total: int = Field(description="What is paid for it: net plus VAT.")
    mentions: list[str] = Field(
        description="The VAT mention where one applies, the self-billing mention, the statement."
    )


class InvoiceList(BaseModel):
    items: list[InvoiceOut] = Field(description="Invoices and credit notes, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    has_more: bool = Field(description="Whether another page follows.")


class CreditNoteRequest(RequestModel):
    model_config = request_examples({"reason": "The partner's legal name was misspelt"})

    reason: Annotated[
        str,
        StringConstraints(min_length=1, max_length=400, pattern=NONBLANK_TEXT_PATTERN),
        AfterValidator(strip_nonblank),
    ] = Field(description="Why the invoice is corrected: printed on the credit note.")


class PaidStatement(BaseModel):
    statement_id: uuid.UUID = Field(description="A statement the transfer pays.")
    invoice_number: str | None = Field(description="The self-billed invoice it pays the statement through.")


class PartnerPayoutOut(BaseModel):
    transfer_id: int = Field(description="The transfer's id within the service.")
    run_reference: str = Field(description="The payout run's reference: the statements' payment reference once paid.")
    payment_date: date = Field(description="When the bank is to execute (or executed) the transfer.")
    currency: str = Field(description="ISO 4217: EUR (SEPA).")
    amount: int = Field(description="Minor units: the totals of the invoices it pays, VAT included where charged.")
    remittance: str = Field(description="The remittance text the partner's bank shows: the invoice numbers.")
    iban_masked: str = Field(description="The account paid, masked (`DE…3000`).")
    status: Literal["pending", "executed", "returned"] = Field(
        description="`pending` until finance confirms the bank executed it; `returned` when the bank returned it "
        "(its statements are paid by a later run)."
    )
    returned_at: datetime | None = Field(description="When it was marked returned; null otherwise.")
    return_reason: str | None = Field(description="Why the bank returned it; null otherwise.")
    statements: list[PaidStatement] = Field(description="The statements it pays, with their invoices.")


class PartnerPayoutList(BaseModel):
    items: list[PartnerPayoutOut] = Field(description="The partner's payouts, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    has_more: bool = Field(description="Whether another page follows.")
