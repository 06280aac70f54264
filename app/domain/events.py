"""Domain events: what happened, recorded in the transaction of the change (the outbox).

A use case calls `record()` next to the change it makes; a rolled-back request leaves no event. The
worker reads events after commit (outbound webhooks). Each type has a payload model; a payload
carries ids and the facts a receiver needs, never secrets or another partner's data.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import events as repo
from app.db.tables import DomainEvent


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartnerRegistered(Payload):
    partner_id: uuid.UUID = Field(description="The new partner's id.")
    company: str = Field(description="The partner's registered company name.")
    country: str = Field(description="The partner's country: ISO 3166-1 alpha-2.")
    status: str = Field(description="`pending`, or `active` when the program approves partners automatically.")


class PartnerStatusChanged(Payload):
    partner_id: uuid.UUID = Field(description="The partner's id.")
    from_status: str = Field(description="The status before: `pending`, `active` or `suspended`.")
    to_status: str = Field(description="The status after: `active`, `suspended` or `terminated` (R04).")
    reason: str | None = Field(description="Why, as the admin gave it; null when none was given.")
    by: str = Field(description="Who changed it: `admin:<key id>`, `system`...")


class LevelCause(Payload):
    points_entry_id: int | None = Field(default=None, description="The points entry whose effect changed the level.")
    terms_version: int | None = Field(default=None, description="The terms version that took effect.")


class PartnerLevelChanged(Payload):
    partner_id: uuid.UUID = Field(description="The partner's id.")
    from_level: str = Field(description="The level before (R02).")
    to_level: str = Field(description="The level after (R02).")
    points: int = Field(description="The partner's active points after the change (R03).")
    changed_at: datetime = Field(description="When the change took effect.")
    cause: LevelCause = Field(description="What changed the level: a points entry, or terms that took effect.")


class RegistrationFacts(Payload):
    registration_id: uuid.UUID = Field(description="The registration's id.")
    partner_id: uuid.UUID = Field(description="The partner that registered the customer.")
    customer_id: uuid.UUID = Field(description="The customer registered.")
    company: str = Field(description="The customer's legal name as registered.")
    country: str = Field(description="The customer's country: ISO 3166-1 alpha-2.")
    state: str = Field(description="`live`, or `offered` when a lead offer holds it for the partner (R19).")
    registered_at: datetime = Field(description="When its window started (R07).")
    expires_at: datetime = Field(description="When its window ends (R07).")


class RegistrationExpiring(Payload):
    registration_id: uuid.UUID = Field(description="The registration's id.")
    partner_id: uuid.UUID = Field(description="The partner that registered the customer.")
    company: str = Field(description="The customer's legal name as registered.")
    expires_at: datetime = Field(description="When its window ends unless an order converts it first (R07).")


class RegistrationEnded(Payload):
    registration_id: uuid.UUID = Field(description="The registration's id.")
    partner_id: uuid.UUID = Field(description="The partner that registered the customer.")
    company: str = Field(description="The customer's legal name as registered.")
    state: str = Field(description="`converted`, `expired` or `withdrawn`.")
    ended_at: datetime = Field(description="When it stopped being live.")
    order_id: str | None = Field(default=None, description="The order that converted it.")
    reason: str | None = Field(default=None, description="For a withdrawal: why; null otherwise.")


class LeadOfferFacts(Payload):
    lead_id: uuid.UUID = Field(description="The lead's id.")
    offer_id: uuid.UUID = Field(description="The offer's id.")
    partner_id: uuid.UUID = Field(description="The partner the lead was offered to.")
    registration_id: uuid.UUID | None = Field(
        description="The registration the offer holds for the partner (R19); null when none."
    )
    company: str = Field(description="The prospect's legal name.")
    country: str = Field(description="The prospect's country: ISO 3166-1 alpha-2.")
    deadline: datetime | None = Field(
        description="While offered: when the offer expires unanswered (R19); null once it is answered or ended."
    )
    reason: str | None = Field(default=None, description="For a decline: the partner's reason; null otherwise.")


class StoreEventParked(Payload):
    event_id: int = Field(description="The stored store event's id (`GET /v1/webhook-events/{event_id}`).")
    webhook_id: str = Field(description="The `webhook-id` the store sent it with.")
    event_type: str = Field(description="The store event's type: `order.paid`, `order.refunded` or `licence.lapsed`.")
    reason_code: str | None = Field(description="Why it was parked, as a stable code, e.g. `order_not_received`.")
    reason: str | None = Field(description="That reason in a sentence.")


class OrderFlagged(Payload):
    order_id: str = Field(description="The store order flagged.")
    kind: str = Field(
        description="`discount_mismatch` (R12), `nfr_resale` (R17), `own_company` (R22) or "
        "`relationship_conflict` (R08)."
    )
    partner_id: uuid.UUID | None = Field(description="The partner concerned; null when none.")
    detail: str = Field(description="What was found, in a sentence.")


class DirectoryTextDecided(Payload):
    review_id: int = Field(description="The directory review decided.")
    partner_id: uuid.UUID = Field(description="The partner whose text or name it is.")
    kind: str = Field(
        description="`text` (description and services), `name_and_website` (the company name and website the "
        "directory shows) or `company_name` (R20)."
    )
    description: str | None = Field(description="The text now published (approved) or refused (rejected).")
    services: list[str] = Field(description="`text`: the services now published or refused; empty otherwise.")
    company: str | None = Field(
        default=None, description="`name_and_website`: the name now shown or refused; `company_name`: the name."
    )
    website: str | None = Field(default=None, description="`name_and_website`: the website now shown or refused.")
    reason: str | None = Field(default=None, description="Why it was rejected.")


class StatementFacts(Payload):
    statement_id: uuid.UUID = Field(description="The statement's id.")
    partner_id: uuid.UUID = Field(description="The partner paid.")
    quarter: str = Field(description="The quarter it covers, e.g. `2026-Q1` (R16).")
    currency: str = Field(description="Its ISO 4217 currency.")
    status: str = Field(description="Its status now: `draft`, `approved` or `paid` (R16).")
    payable_amount: int = Field(description="Minor units of `currency`.")
    payout_date: datetime = Field(description="When it is due: the 25th of the month after its quarter (R16).")
    payment_reference: str | None = Field(
        default=None, description="For `statement.paid`: the bank transfer's reference; null otherwise."
    )


class PayeeChanged(Payload):
    partner_id: uuid.UUID = Field(description="The partner whose payee details changed.")
    changed: list[str] = Field(
        description="What changed: names of payee detail fields (`legal_name`, `address_line1`, `iban`, `bic`, "
        "`vat_id`...), or `self_billing_agreement` for an acceptance of the self-billing agreement. Never the "
        "values."
    )
    bank_details_changed: bool = Field(description="Whether the IBAN or the BIC changed.")
    payouts_held_until: datetime | None = Field(
        description="Until when the partner's payouts are held because its bank details changed; null when no "
        "hold is running."
    )
    self_billing_version: str | None = Field(
        description="For an acceptance of the self-billing agreement: the version accepted; null otherwise."
    )
    by: str = Field(description="Who made the change: `partner:<id>` or `admin:<key id>`.")


class StatementReturned(Payload):
    statement_id: uuid.UUID = Field(description="The statement's id.")
    partner_id: uuid.UUID = Field(description="The partner it pays.")
    quarter: str = Field(description="The quarter it covers, e.g. `2026-Q1` (R16).")
    currency: str = Field(description="Its ISO 4217 currency.")
    status: str = Field(description="Its status now: `approved`, for the next payout run.")
    payable_amount: int = Field(description="Minor units of `currency`.")
    run_id: uuid.UUID = Field(description="The payout run whose transfer the bank returned.")
    run_reference: str = Field(description="That run's reference.")
    invoice_number: str | None = Field(description="The statement's invoice, which the next run pays.")
    reason: str = Field(description="Why the bank returned the transfer, as finance recorded it.")


class InvoiceIssued(Payload):
    invoice_id: int = Field(description="The invoice's id.")
    number: str = Field(description="Its number: `<series>-<year>-<sequence>`, without gaps per year.")
    kind: Literal["invoice", "credit_note"] = Field(
        default="invoice", description="`invoice`, or `credit_note`: a correction crediting an invoice in full."
    )
    credits_number: str | None = Field(default=None, description="The number of the invoice a credit note credits.")
    partner_id: uuid.UUID = Field(description="The partner in whose name it is issued (the seller).")
    statement_id: uuid.UUID = Field(description="The statement it invoices.")
    quarter: str = Field(description="The statement's quarter.")
    currency: str = Field(description="Its ISO 4217 currency.")
    net: int = Field(description="The amount before VAT, in minor units.")
    vat_rate_bp: int | None = Field(description="The VAT rate in basis points when VAT is charged; null otherwise.")
    vat_amount: int = Field(description="The VAT, in minor units.")
    total: int = Field(description="What the transfer pays for it, in minor units.")
    issued_at: datetime = Field(description="When it was issued: when its statement first entered a payout run.")


class PayoutRunFacts(Payload):
    run_id: uuid.UUID = Field(description="The payout run's id.")
    reference: str = Field(
        description="Its reference: the SEPA file's message id and the statements' payment reference."
    )
    payment_date: date = Field(description="The requested execution date of its transfers.")
    currency: str = Field(description="The currency it pays: `EUR`.")
    status: str = Field(description="`created` or `executed`.")
    transfers: int = Field(description="Its transfers, one per partner paid.")
    control_sum: int = Field(description="The sum of its transfers, in minor units.")
    statements: int = Field(description="Statements it pays (`payout_run.executed`: those paid, returns left out).")
    not_payable: int = Field(
        description="Statements it lists as not payable, with their reasons (`payout_run.created`)."
    )
    returned: int = Field(default=0, description="Transfers the bank returned (`payout_run.executed`).")


class TermsTookEffect(Payload):
    version: int = Field(description="The terms version that took effect.")
    effective_from: datetime = Field(description="When it took effect.")
    partners_recomputed: int = Field(description="Partners whose level was computed again under it (R02, R03).")
    levels_changed: int = Field(description="Of those, partners whose level changed.")


class WebhookSubscriptionDisabled(Payload):
    subscription_id: uuid.UUID = Field(description="The subscription disabled.")
    partner_id: uuid.UUID | None = Field(description="The partner whose subscription it is, if any.")
    url: str = Field(description="Its target URL.")
    failing_since: datetime = Field(description="When its deliveries started failing.")
    reason: str = Field(description="Why it was disabled, e.g. every delivery failed for 5 days, with the last error.")


EventType = Literal[
    "partner.registered",
    "partner.approved",
    "partner.suspended",
    "partner.reinstated",
    "partner.terminated",
    "partner.level_changed",
    "registration.created",
    "registration.expiring",
    "registration.expired",
    "registration.converted",
    "registration.withdrawn",
    "lead.offered",
    "lead.accepted",
    "lead.declined",
    "lead.expired",
    "store_event.parked",
    "order.flagged",
    "directory_text.approved",
    "directory_text.rejected",
    "statement.ready",
    "statement.approved",
    "statement.paid",
    "statement.overdue",
    "statement.returned",
    "payee.changed",
    "invoice.issued",
    "payout_run.created",
    "payout_run.executed",
    "terms.took_effect",
    "webhook_subscription.disabled",
]


@dataclass(frozen=True)
class EventKind:
    payload: type[Payload]
    description: str
    example: dict[str, Any]


_P = "6f1c2a9e-3b7d-4c1e-9a55-1d2e3f4a5b6c"
_R = "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
_C = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
_L = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
_O = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
_S = "3d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f6a"
_T = "2026-03-02T09:00:00Z"


def _status(frm: str, to: str, reason: str | None) -> dict[str, Any]:
    return {"partner_id": _P, "from_status": frm, "to_status": to, "reason": reason, "by": "admin:1"}


def _registration(state: str) -> dict[str, Any]:
    return {
        "registration_id": _R,
        "partner_id": _P,
        "customer_id": _C,
        "company": "Contoso SA",
        "country": "FR",
        "state": state,
        "registered_at": _T,
        "expires_at": "2026-05-01T09:00:00Z",
    }


def _ended(state: str, **extra: Any) -> dict[str, Any]:
    return {"registration_id": _R, "partner_id": _P, "company": "Contoso SA", "state": state, "ended_at": _T} | extra


def _offer(**extra: Any) -> dict[str, Any]:
    return {
        "lead_id": _L,
        "offer_id": _O,
        "partner_id": _P,
        "registration_id": _R,
        "company": "Fabrikam GmbH",
        "country": "DE",
        "deadline": "2026-03-07T09:00:00Z",
    } | extra


def _statement(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "statement_id": _S,
        "partner_id": _P,
        "quarter": "2026-Q1",
        "currency": "EUR",
        "status": status,
        "payable_amount": 79200,
        "payout_date": "2026-04-25T00:00:00Z",
    } | extra


def _run(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": _O,
        "reference": "PR-20260425-1A2B3C4D",
        "payment_date": "2026-04-25",
        "currency": "EUR",
        "status": status,
        "transfers": 10,
        "control_sum": 1250000,
    } | extra


CATALOGUE: dict[str, EventKind] = {
    "partner.registered": EventKind(
        PartnerRegistered,
        "A company registered as a partner and accepted the agreement.",
        {"partner_id": _P, "company": "Acme Analytics SARL", "country": "FR", "status": "pending"},
    ),
    "partner.approved": EventKind(
        PartnerStatusChanged, "An admin approved a pending partner.", _status("pending", "active", None)
    ),
    "partner.suspended": EventKind(
        PartnerStatusChanged, "A partner was suspended (R04).", _status("active", "suspended", "unpaid invoices")
    ),
    "partner.reinstated": EventKind(
        PartnerStatusChanged, "A suspended partner is active again.", _status("suspended", "active", "settled")
    ),
    "partner.terminated": EventKind(
        PartnerStatusChanged, "A partner left the program.", _status("active", "terminated", "contract ended")
    ),
    "partner.level_changed": EventKind(
        PartnerLevelChanged,
        "A partner's level changed, by a points entry or by new terms taking effect (R03).",
        {
            "partner_id": _P,
            "from_level": "silver",
            "to_level": "gold",
            "points": 162,
            "changed_at": _T,
            "cause": {"points_entry_id": 41, "terms_version": None},
        },
    ),
    "registration.created": EventKind(
        RegistrationFacts, "A partner registered a customer (R05-R07).", _registration("live")
    ),
    "registration.expiring": EventKind(
        RegistrationExpiring,
        "A live registration's window ends in 7 days.",
        {"registration_id": _R, "partner_id": _P, "company": "Contoso SA", "expires_at": "2026-05-01T09:00:00Z"},
    ),
    "registration.expired": EventKind(
        RegistrationEnded, "A registration's window ended without an order (R07).", _ended("expired")
    ),
    "registration.converted": EventKind(
        RegistrationEnded,
        "A qualifying order established the relationship (R07).",
        _ended("converted", order_id="ord_1001"),
    ),
    "registration.withdrawn": EventKind(
        RegistrationEnded,
        "A registration was withdrawn (a declined or missed lead offer).",
        _ended("withdrawn", reason="declined"),
    ),
    "lead.offered": EventKind(LeadOfferFacts, "A lead was offered to a partner, with a deadline (R19).", _offer()),
    "lead.accepted": EventKind(LeadOfferFacts, "A partner accepted a lead offer.", _offer(deadline=None)),
    "lead.declined": EventKind(LeadOfferFacts, "A partner declined a lead offer.", _offer(reason="no capacity")),
    "lead.expired": EventKind(
        LeadOfferFacts, "A lead offer's deadline passed unanswered.", _offer(reason="deadline passed")
    ),
    "store_event.parked": EventKind(
        StoreEventParked,
        "A store event could not be applied yet; an admin may fix the cause and replay it.",
        {
            "event_id": 12,
            "webhook_id": "msg_1",
            "event_type": "order.paid",
            "reason_code": "unknown_sku",
            "reason": "SKU x",
        },
    ),
    "order.flagged": EventKind(
        OrderFlagged,
        "An order needs an admin's review (listed under /v1/order-flags): a discount other than expected (R12), "
        "a not-for-resale licence sold (R17), or the partner's own company as its customer (R22).",
        {
            "order_id": "ord_1001",
            "kind": "discount_mismatch",
            "partner_id": _P,
            "detail": "expected 20 %, applied 30 %",
        },
    ),
    "directory_text.approved": EventKind(
        DirectoryTextDecided,
        "An admin approved a partner's directory text: the directory shows it now (R18).",
        {
            "review_id": 7,
            "partner_id": _P,
            "kind": "text",
            "description": "Certified Qalyptus partner in Lyon.",
            "services": ["training", "integration"],
            "reason": None,
        },
    ),
    "directory_text.rejected": EventKind(
        DirectoryTextDecided,
        "An admin rejected a partner's directory text, with the reason; the directory keeps the last "
        "approved text (R18).",
        {
            "review_id": 8,
            "partner_id": _P,
            "kind": "text",
            "description": "100% guaranteed ROI, official Qalyptus product.",
            "services": [],
            "reason": "No guarantees of results, and the partner is not the vendor.",
        },
    ),
    "statement.ready": EventKind(
        StatementFacts, "A quarter closed: the statement is ready (draft, R16).", _statement("draft")
    ),
    "statement.approved": EventKind(StatementFacts, "Finance approved a statement.", _statement("approved")),
    "statement.paid": EventKind(
        StatementFacts, "A statement was paid.", _statement("paid", payment_reference="SEPA-1")
    ),
    "statement.overdue": EventKind(
        StatementFacts,
        "A statement, draft or approved, is still unpaid after its payout date (R16).",
        _statement("approved"),
    ),
    "payee.changed": EventKind(
        PayeeChanged,
        "A partner's payee details changed, or it accepted the self-billing agreement; a change of bank details "
        "holds its payouts for a few days.",
        {
            "partner_id": _P,
            "changed": ["iban", "bic"],
            "bank_details_changed": True,
            "payouts_held_until": "2026-03-09T09:00:00Z",
            "self_billing_version": None,
            "by": f"partner:{_P}",
        },
    ),
    "statement.returned": EventKind(
        StatementReturned,
        "The bank returned the transfer that paid a statement: it is approved again, keeps its invoice, and the "
        "next payout run pays it.",
        {k: v for k, v in _statement("approved").items() if k != "payout_date"}
        | {
            "run_id": _O,
            "run_reference": "PR-20260425-1A2B3C4D",
            "invoice_number": "SB-2026-000001",
            "reason": "AC04 account closed",
        },
    ),
    "invoice.issued": EventKind(
        InvoiceIssued,
        "A statement entered its first payout run: its self-billed invoice was issued in the partner's name.",
        {
            "invoice_id": 1,
            "number": "SB-2026-000001",
            "partner_id": _P,
            "statement_id": _S,
            "quarter": "2026-Q1",
            "currency": "EUR",
            "net": 79200,
            "vat_rate_bp": None,
            "vat_amount": 0,
            "total": 79200,
            "issued_at": _T,
        },
    ),
    "payout_run.created": EventKind(
        PayoutRunFacts,
        "Finance created a payout run: its SEPA file is ready to send to the bank.",
        _run("created", statements=12, not_payable=2),
    ),
    "payout_run.executed": EventKind(
        PayoutRunFacts,
        "Finance confirmed the bank executed a payout run: its statements are paid.",
        _run("executed", statements=11, not_payable=0, returned=1),
    ),
    "terms.took_effect": EventKind(
        TermsTookEffect,
        "A program terms version took effect; levels were recomputed under it (R03).",
        {"version": 2, "effective_from": _T, "partners_recomputed": 120, "levels_changed": 4},
    ),
    "webhook_subscription.disabled": EventKind(
        WebhookSubscriptionDisabled,
        "An outbound webhook subscription failed every delivery for 5 days and was disabled.",
        {
            "subscription_id": _S,
            "partner_id": _P,
            "url": "https://crm.example.com/hooks/qalyptus",
            "failing_since": _T,
            "reason": "every delivery failed for 5 days; last: answered 503",
        },
    ),
}
assert set(CATALOGUE) == set(EventType.__args__)  # type: ignore[attr-defined]

PARTNER_FAMILIES = ("partner.", "registration.", "lead.", "statement.", "directory_text.", "payee.", "invoice.")
"""Types a partner reads about itself; `terms.took_effect` is read by every partner."""
PROGRAM_WIDE = ("terms.took_effect",)


def partner_may_read(event_type: str) -> bool:
    return event_type.startswith(PARTNER_FAMILIES) or event_type in PROGRAM_WIDE


def record(
    session: AsyncSession,
    type: EventType,
    payload: Payload,
    *,
    occurred_at: datetime,
    recorded_at: datetime | None = None,
    partner_id: uuid.UUID | None,
    subject: str,
    refs: dict[str, Any] | None = None,
) -> DomainEvent:
    """Add an event to the session: it is written with the change, or not at all."""
    kind = CATALOGUE[type]
    if not isinstance(payload, kind.payload):
        raise TypeError(f"{type} takes a {kind.payload.__name__} payload, not {payload.__class__.__name__}")
    event = DomainEvent(
        type=type,
        occurred_at=occurred_at,
        recorded_at=recorded_at or occurred_at,
        partner_id=partner_id,
        subject=subject,
        refs={k: str(v) for k, v in (refs or {}).items()},
        version=1,
        payload=payload.model_dump(mode="json"),
    )
    session.add(event)
    return event


async def search(
    session: AsyncSession,
    *,
    types: Sequence[str] | None,
    partner_id: uuid.UUID | None,
    after_id: int | None,
    limit: int,
) -> Sequence[DomainEvent]:
    """Events oldest first (an event log is read forward), filtered by type and partner."""
    return await repo.search(session, types=types, partner_id=partner_id, after_id=after_id, limit=limit)


async def for_partner(
    session: AsyncSession, partner_id: uuid.UUID, *, types: Sequence[str] | None, after_id: int | None, limit: int
) -> Sequence[DomainEvent]:
    """What a partner may read: its own partner, registration, lead and statement events, and the
    program-wide ones; never another partner's."""
    return await repo.for_partner(
        session,
        partner_id,
        families=PARTNER_FAMILIES,
        program_wide=PROGRAM_WIDE,
        types=types,
        after_id=after_id,
        limit=limit,
    )


async def exists(session: AsyncSession, type: EventType, subject: str) -> bool:
    """Whether an event of this type was recorded about this subject (once-only notices)."""
    return await repo.exists(session, type, subject)


async def without(session: AsyncSession, type: EventType, subjects: Sequence[str]) -> list[str]:
    """The subjects that have no event of this type yet, in the order given (once-only notices)."""
    seen = await repo.subjects_with(session, type, subjects)
    return [subject for subject in subjects if subject not in seen]
