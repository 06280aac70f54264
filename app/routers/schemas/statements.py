"""API schemas — quarterly statements, payments, adjustments and the program's figures."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.domain.rules.numbers import WholeInt
from app.routers.fields import Reason, strip
from app.routers.schemas.common import Count, Currency, OnePage, RequestModel, request_examples

QuarterName = Annotated[str, StringConstraints(pattern=r"^(19|2\d)\d\d-Q[1-4]$")]


StatementStatusName = Literal["draft", "approved", "in_payment", "paid"]


class StatementLineOut(BaseModel):
    money_entry_id: int = Field(description="The money entry on the statement.")
    effective_at: datetime = Field(description="When the entry counts from.")
    order_id: str | None = Field(description="The store order it comes from; null for an adjustment.")
    customer: str | None = Field(description="The customer's name; null when none.")
    rule: str = Field(description="The program rule that made the entry, e.g. R11.")
    amount: int = Field(description="The entry's amount, minor units; negative for a reversal.")
    label: str | None = Field(description="Why the entry is here rather than in its own quarter.")
    explanation: str = Field(description="Why, in a sentence (R21).")


class StatementOut(BaseModel):
    id: uuid.UUID = Field(description="The statement's id.")
    partner_id: uuid.UUID = Field(description="The partner paid.")
    quarter: str = Field(description="The calendar quarter it covers, e.g. `2026-Q1`, in the terms' time zone (R16).")
    currency: str = Field(description="The statement's ISO 4217 currency; one statement per currency.")
    status: StatementStatusName = Field(
        description="`draft` when closed, `approved` by an admin, `in_payment` while a payout run's transfer "
        "pays it, then `paid` (R16)."
    )
    opening_balance: int = Field(description="A negative total carried from the previous statement.")
    lines_total: int = Field(description="The sum of the lines, minor units.")
    closing_balance: int = Field(
        description="`opening_balance` plus `lines_total`, minor units; carried forward when negative."
    )
    payable_amount: int = Field(description="Paid on `payout_date`; 0 when the closing balance is negative.")
    payout_date: date = Field(description="When it is due: the 25th of the month after its quarter (R16).")
    created_at: datetime = Field(description="When the quarter close made it.")
    approved_at: datetime | None = Field(description="When an admin approved it; null until then.")
    paid_at: datetime | None = Field(description="When it was marked paid; null until then.")
    payment_reference: str | None = Field(
        description="The bank transfer's reference, as the admin gave it; null until paid."
    )
    lines: list[StatementLineOut] | None = Field(
        default=None, description="The entries on it; null when the list leaves them out."
    )


class PaidStatementOut(StatementOut):
    """A statement as marking it paid answers: approved and paid, with the payment's reference."""

    approved_at: datetime = Field(description="When an admin approved it.")
    paid_at: datetime = Field(description="When it was marked paid.")
    payment_reference: str = Field(description="The bank transfer's reference, as the admin gave it.")


class QuarterCloseOut(BaseModel):
    quarter: str = Field(description="The quarter closed, e.g. `2026-Q1`.")
    closed_now: bool = Field(description="False when the quarter had been closed before: nothing changed.")
    statements: list[StatementOut] = Field(
        description="The statements the close made (or had made), one per partner and currency."
    )


class QuarterOut(BaseModel):
    quarter: str = Field(description="The quarter, e.g. `2026-Q1`.")
    time_zone: str = Field(description="The IANA time zone the quarter was counted in (the terms').")
    cutoff: datetime = Field(description="The quarter's end: entries effective before it are on its statements.")
    closed_at: datetime = Field(description="When it was closed.")
    closed_by: str = Field(description="Who closed it (`admin:<key id>` or `system`).")
    statements: int = Field(description="How many statements the close made.")


class Payment(RequestModel):
    model_config = request_examples({"payment_reference": "SEPA-2026-Q1-0042", "paid_on": "2026-05-02"})

    payment_reference: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$"), AfterValidator(strip)
    ] = Field(description="The bank transfer's reference: printable ASCII, 1 to 200 characters.")
    paid_on: date | None = Field(default=None, description="Default: today.")


class StatementPayment(Payment):
    model_config = request_examples(
        {"statement_id": "5f0c2d4e-8a1b-4c3d-9e7f-1a2b3c4d5e6f", "payment_reference": "SEPA-2026-Q1-0042"}
    )

    statement_id: uuid.UUID = Field(description="The statement paid.")


class BulkApproval(RequestModel):
    model_config = request_examples(
        {"statement_ids": ["5f0c2d4e-8a1b-4c3d-9e7f-1a2b3c4d5e6f", "6a1d3e5f-9b2c-4d4e-8f80-2b3c4d5e6f70"]}
    )

    statement_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=10_000, description="The draft statements to approve, 1 to 10000."
    )


class BulkPayment(RequestModel):
    model_config = request_examples(
        {
            "payments": [
                {
                    "statement_id": "5f0c2d4e-8a1b-4c3d-9e7f-1a2b3c4d5e6f",
                    "payment_reference": "SEPA-2026-Q1-0042",
                    "paid_on": "2026-05-02",
                }
            ]
        }
    )

    payments: list[StatementPayment] = Field(
        min_length=1,
        max_length=10_000,
        description="The approved statements to mark paid, with their references, 1 to 10000.",
    )


class Adjustment(RequestModel):
    model_config = request_examples(
        {
            "kind": "money",
            "amount": 2500,
            "currency": "EUR",
            "reason": "Commission on an order the store reported without the partner.",
        },
        {"kind": "points", "amount": -4, "reason": "Licence returned outside the store; its points are taken back."},
    )

    kind: Literal["points", "money"] = Field(
        description="`points` to adjust active points (R03), `money` to adjust commission."
    )
    amount: WholeInt = Field(
        ge=-(10**9),
        le=10**9,
        description="Points, or minor units; negative to take away. Never 0.",
        json_schema_extra={"not": {"const": 0}},
    )
    currency: Currency | None = Field(
        default=None, description="For `money`: the ISO 4217 currency; omit for `points`."
    )
    reason: Reason = Field(description="Why; kept on the entry as its explanation and in the audit log.")


class AdjustmentOut(BaseModel):
    kind: Literal["points", "money"] = Field(description="`points` or `money`.")
    entry_id: int = Field(description="The points or money entry made.")
    amount: int = Field(description="Points, or minor units of `currency`.")
    currency: str | None = Field(description="For `money`: the ISO 4217 currency; null for points.")
    effective_at: datetime = Field(description="When the entry counts from: now.")


class PayoutForecast(BaseModel):
    currency: str = Field(description="The ISO 4217 currency.")
    payout_date: date = Field(
        description="The next payout date: that of the earliest unpaid statement with something to pay, else the open "
        "quarter's (R16)."
    )
    expected_amount: int = Field(
        description="What `payout_date` is expected to pay, minor units: the unpaid statements' payable amounts, "
        "or what the open quarter accrues after a negative balance carried."
    )
    unpaid_statements: list[uuid.UUID] = Field(
        description="The partner's statements in this currency not yet paid, draft or approved."
    )
    accruing: int = Field(description="Entries not yet on a statement (the open quarter).")


class QuarterMoney(BaseModel):
    quarter: str = Field(description="The quarter, e.g. `2026-Q1`.")
    currency: str = Field(description="The ISO 4217 currency.")
    accrued: int = Field(description="Commission entries effective in the quarter, minor units.")
    payable: int = Field(description="On approved statements not in a payout run (the same as `due`).")
    due: int = Field(description="On approved statements not yet in a payout run, minor units.")
    in_payment: int = Field(description="On statements a payout run pays now (not yet confirmed), minor units.")
    paid: int = Field(description="On statements paid (by a run confirmed executed, or marked paid), minor units.")


class TopPartner(BaseModel):
    partner_id: uuid.UUID = Field(description="The partner's id.")
    company: str = Field(description="The partner's company name.")
    value: int = Field(description="Active points, or commission in minor units of `currency`.")
    currency: str | None = Field(default=None, description="For commission: the ISO 4217 currency; null for points.")


class ProgramOverview(BaseModel):
    partners_by_level: dict[str, int] = Field(
        description="Active partners by level; one without any entry yet is an Affiliate."
    )
    partners_by_status: dict[str, int] = Field(
        description="Partners by status (`pending`, `active`, `suspended`, `terminated`)."
    )
    points_distribution: list[Count] = Field(
        description="The same active partners by band of points, the bands following the level thresholds of the "
        "terms in force (`0`, `1-159`, ...); one without any entry yet is in `0`, and a band `negative` comes first "
        "when an adjustment took a balance below 0. The counts add up to those of `partners_by_level`."
    )
    commissions: list[QuarterMoney] = Field(description="Commission by quarter and currency, in the `from`/`to` range.")
    registrations_by_state: dict[str, int] = Field(
        description="Registrations by state (`live`, `converted`, `expired`...) in the range."
    )
    refusals_by_reason: dict[str, int] = Field(description="Registration refusals by code in the range.")
    parked_webhook_events: dict[str, int] = Field(description="Store events parked, by reason code.")
    discount_mismatches: int = Field(description="Discount mismatches recorded in the range (R12).")
    order_flags: dict[str, int] = Field(
        description="Unresolved order flags by kind: `discount_mismatch`, `nfr_resale`, `own_company`, "
        "`relationship_conflict`."
    )
    overdue_statements: int = Field(
        description="Statements not marked paid by their payout date, drafts and approved ones (R16), whatever "
        "`from`/`to`."
    )
    overdue_quarters: int = Field(
        description="Quarters holding payable entries and still not closed after their payout date (R16, listed "
        "by `GET /v1/quarters/overdue`), whatever `from`/`to`."
    )
    top_partners_by_points: list[TopPartner] = Field(description="The partners with the most active points.")
    top_partners_by_commission: list[TopPartner] = Field(
        description="The partners with the most commission in the range, per currency."
    )
    authentication_refusals: dict[str, int] = Field(
        description="Requests refused over the last 30 days (not filtered by `from`/`to`): `failed` for a wrong "
        "or missing API key, `throttled` for a 429 to an address past the limit of failures per minute."
    )


class QuarterList(OnePage):
    items: list[QuarterOut] = Field(description="Closed quarters.")


class StatementList(OnePage):
    items: list[StatementOut] = Field(description="Statements.")


class PayoutForecastList(OnePage):
    items: list[PayoutForecast] = Field(description="Payout forecasts, one per currency.")


class OverdueQuarter(BaseModel):
    quarter: str = Field(description="The quarter, e.g. `2026-Q1`.")
    partner_id: uuid.UUID = Field(description="The partner's id.")
    company: str = Field(description="The partner's company name.")
    currency: str = Field(description="The ISO 4217 currency.")
    entries: int = Field(description="Payable money entries of the partner that the quarter's statement would take.")
    opening_balance: int = Field(description="A negative total carried from the partner's last statement.")
    entries_total: int = Field(description="The sum of those entries, minor units.")
    payable_amount: int = Field(description="What the statement would pay if the quarter were closed now (0 or more).")
    payout_date: date = Field(description="The quarter's payout date, passed.")


class OverdueQuarterPage(BaseModel):
    items: list[OverdueQuarter] = Field(description="Overdue quarters, per partner and currency, on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class StatementSearch(BaseModel):
    items: list[StatementOut] = Field(description="The statements that match, at most `limit`.")
    next_cursor: str | None = Field(default=None, description="Always null: narrow the filters or raise `limit`.")
    has_more: bool = Field(description="Whether more statements match than `limit`.")
