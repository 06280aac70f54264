"""Payout runs (the transfers that pay approved statements) and the self-billed invoices they pay."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


class PayoutRun(SQLModel, table=True):
    """A run of transfers finance makes on a payment date: `created` (its file to send to the bank),
    then `executed` once finance confirms the bank executed it."""

    __tablename__ = "payout_runs"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    reference: str = Field(max_length=35, unique=True)
    """The run's reference: the file's message id, and the payment reference of the statements it pays."""
    payment_date: date
    currency: str = Field(max_length=3)
    status: str = Field(max_length=16)
    """`created` or `executed`."""
    transfers: int
    control_sum: int = Field(sa_type=BigInteger)
    """The sum of the run's transfers, in minor units."""
    sepa_xml: str | None = Field(default=None, sa_type=Text)
    """The pain.001.001.09 file as made when the run was created; null when it has no transfer."""
    created_at: datetime = utc_column()
    created_by: str = Field(max_length=100)
    executed_at: datetime | None = utc_column(nullable=True)
    executed_by: str | None = Field(default=None, max_length=100)


class PayoutTransfer(SQLModel, table=True):
    """One transfer of a run: one partner paid its invoices' totals, to the payee details in force when
    the run was created (kept here: a later change holds only later runs)."""

    __tablename__ = "payout_transfers"
    __table_args__ = (UniqueConstraint("run_id", "partner_id"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    run_id: uuid.UUID = Field(foreign_key="payout_runs.id", index=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    end_to_end_id: str = Field(max_length=35)
    amount: int = Field(sa_type=BigInteger)
    remittance: str = Field(max_length=140)
    payee_details_id: int = Field(sa_type=BigIntId, foreign_key="payee_details.id")
    """The payee details version the transfer pays to."""
    name: str = Field(max_length=200)
    address_line1: str = Field(max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, max_length=100)
    city: str = Field(max_length=100)
    country: str = Field(max_length=2)
    iban: str = Field(sa_type=Text)
    """Encrypted with PARTNERS_SECRETS_KEY, as in `payee_details`."""
    bic: str = Field(sa_type=Text)
    iban_masked: str = Field(max_length=16)
    status: str = Field(max_length=16)
    """`pending`, `executed`, or `returned` by the bank."""
    returned_at: datetime | None = utc_column(nullable=True)
    return_reason: str | None = Field(default=None, max_length=500)


class PayoutRunStatement(SQLModel, table=True):
    """A statement a run considered: paid by one of its transfers, or listed as not payable with the reason."""

    __tablename__ = "payout_run_statements"
    __table_args__ = (UniqueConstraint("run_id", "statement_id"), Index(None, "statement_id"))

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    run_id: uuid.UUID = Field(foreign_key="payout_runs.id", index=True)
    statement_id: uuid.UUID = Field(foreign_key="statements.id")
    partner_id: uuid.UUID = Field(foreign_key="partners.id")
    currency: str = Field(max_length=3)
    payable_amount: int = Field(sa_type=BigInteger)
    transfer_id: int | None = Field(default=None, sa_type=BigIntId, foreign_key="payout_transfers.id")
    """The transfer paying it; null when it is not payable in this run."""
    invoice_id: int | None = Field(default=None, sa_type=BigIntId, foreign_key="invoices.id")
    reasons: list[dict[str, str]] = Field(default_factory=list, sa_type=JSON)
    """Why it is not payable in this run (`code`, `detail`); empty when paid by a transfer."""


class InvoiceCounter(SQLModel, table=True):
    """The last number given in an invoice series and year: locked to take the next, so numbers
    never skip or repeat."""

    __tablename__ = "invoice_counters"

    series: str = Field(primary_key=True, max_length=16)
    year: int = Field(primary_key=True)
    last: int = 0


class Invoice(SQLModel, table=True):
    """A self-billed invoice or credit note, issued in the partner's name; immutable (the database
    refuses to change or delete a row). A statement gets its invoice when it first enters a run and
    keeps it, whatever run pays it; a correction is a credit note of the whole invoice (`credits_id`),
    in the same series, after which the statement's next run issues it a new invoice."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("series", "year", "sequence"), UniqueConstraint("credits_id"))

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    number: str = Field(max_length=32, unique=True)
    """`<series>-<year>-<sequence, 6 digits>`."""
    series: str = Field(max_length=16)
    year: int
    sequence: int
    kind: str = Field(default="invoice", max_length=16)
    """`invoice` or `credit_note`."""
    credits_id: int | None = Field(default=None, sa_type=BigIntId, foreign_key="invoices.id")
    """The invoice a credit note credits (in full); null for an invoice."""
    reason: str | None = Field(default=None, max_length=500)
    """Why a credit note was issued."""
    statement_id: uuid.UUID = Field(foreign_key="statements.id", index=True)
    partner_id: uuid.UUID = Field(foreign_key="partners.id", index=True)
    quarter: str = Field(max_length=7)
    currency: str = Field(max_length=3)
    issued_at: datetime = utc_column()
    seller: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    """The partner as it stood at issue: legal name, address, country, VAT id."""
    buyer: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    """The vendor as configured at issue."""
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    """One per kind of commission (`rule`, `description`, `amount`), and the balance carried, if any."""
    net: int = Field(sa_type=BigInteger)
    vat_treatment: str = Field(max_length=16)
    """`domestic`, `reverse_charge`, `outside_eu` or `not_registered`."""
    vat_rate_bp: int | None = None
    """The VAT rate in basis points (2000: 20 %) when VAT is charged."""
    vat_amount: int = Field(sa_type=BigInteger)
    total: int = Field(sa_type=BigInteger)
    mentions: list[str] = Field(default_factory=list, sa_type=JSON)
    """The VAT mention, if any, then the self-billing mention."""


class InvoiceDocument(SQLModel, table=True):
    """The PDF/A-3 (Factur-X) of an invoice or credit note, rendered by a worker after issue. The row
    is made with the invoice; its PDF, once written, is never changed (the database refuses it)."""

    __tablename__ = "invoice_documents"

    invoice_id: int = Field(sa_type=BigIntId, foreign_key="invoices.id", primary_key=True)
    run_id: uuid.UUID | None = Field(default=None, foreign_key="payout_runs.id", index=True)
    """The run that issued the invoice (its progress counts the documents rendered); null for a credit note."""
    pdf: bytes | None = Field(default=None, sa_type=LargeBinary)
    sha256: str | None = Field(default=None, max_length=64)
    rendered_at: datetime | None = utc_column(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=200)
    """The worker rendering it now, until `claimed_until`."""
    claimed_until: datetime | None = utc_column(nullable=True)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=1000)
    """Why the last attempt failed; it is tried again after a pause."""
