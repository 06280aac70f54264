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
    statement_id: uuid.UUID
    partner_id: uuid.UUID
    currency: str
    payable_amount: int = Field(description="The statement's payable amount, minor units (before VAT).")
    transfer_id: int | None = Field(description="The transfer that pays it; null when it is not payable in this run.")
    invoice_number: str | None = Field(description="Its invoice, which the transfer pays; null when not payable.")
    invoice_total: int | None = Field(description="The invoice's total (VAT included where it applies), minor units.")
    not_payable_because: list[NotPayable] = Field(description="Why it is not paid by this run; empty when it is.")


class PayoutTransferOut(BaseModel):
    id: int
    partner_id: uuid.UUID
    end_to_end_id: str = Field(description="The transfer's end-to-end id in the SEPA file.")
    amount: int = Field(description="Minor units: the sum of the totals of the invoices it pays.")
    remittance: str = Field(description="The remittance text: the invoice numbers, or a reference to the run.")
    name: str = Field(description="The payee's legal name as it was when the run was created.")
    iban_masked: str = Field(description="The account paid, masked (`DE…3000`).")
    country: str
    status: Literal["pending", "executed", "returned"]
    returned_at: datetime | None
    return_reason: str | None


class PayoutRunOut(BaseModel):
    id: uuid.UUID
    reference: str = Field(description="The SEPA file's message id, and the payment reference of the statements paid.")
    payment_date: date
    currency: str
    status: Literal["created", "executed"]
    transfers: int
    control_sum: int = Field(description="The sum of the transfers, minor units.")
    created_at: datetime
    executed_at: datetime | None
    transfer_list: list[PayoutTransferOut] = Field(description="One transfer per partner paid.")
    statements: list[PayoutRunStatementOut] = Field(
        description="Every statement the run considered: paid by a transfer, or not payable with the reasons."
    )


class PayoutRunSummary(BaseModel):
    id: uuid.UUID
    reference: str
    payment_date: date
    currency: str
    status: Literal["created", "executed"]
    transfers: int
    control_sum: int
    created_at: datetime
    executed_at: datetime | None


class PayoutRunList(BaseModel):
    items: list[PayoutRunSummary]


class InvoiceLineOut(BaseModel):
    rule: str | None = Field(description="The commission rule (`R11`...); null for a balance carried.")
    description: str
    amount: int = Field(description="Minor units, before VAT.")


class InvoiceOut(BaseModel):
    id: int
    number: str = Field(description="`<series>-<year>-<sequence>`: numbered without gaps per year.")
    partner_id: uuid.UUID
    statement_id: uuid.UUID
    quarter: str
    currency: str
    issued_at: datetime
    seller: dict[str, str | bool | None] = Field(description="The partner, as it stood when the invoice was issued.")
    buyer: dict[str, str | None] = Field(description="The vendor.")
    lines: list[InvoiceLineOut] = Field(description="One per kind of commission, then a balance carried, if any.")
    net: int
    vat_treatment: Literal["domestic", "reverse_charge", "outside_eu", "not_registered"]
    vat_rate_bp: int | None = Field(description="Basis points (2000: 20 %) when VAT is charged.")
    vat_amount: int
    total: int = Field(description="What is paid for it: net plus VAT.")
    mentions: list[str] = Field(
        description="The VAT mention where one applies, the self-billing mention, the statement."
    )


class InvoiceList(BaseModel):
    items: list[InvoiceOut]
