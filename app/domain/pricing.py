"""R12: the reseller price the store asks for before a partner buys for its customer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import customers as customers_repo
from app.db.repositories import ledgers as ledgers_repo
from app.db.repositories import orders as orders_repo
from app.db.tables import DiscountMismatch
from app.domain import directory, identifiers, orders, partners, terms
from app.domain.batch import Facts
from app.domain.errors import Invalid
from app.domain.rules import crediting
from app.domain.rules import order_decision as decisions
from app.domain.rules.identifiers import strong_identifiers
from app.domain.rules.terms import Level
from app.domain.store_events import Buyer, OrderPaidData, StoreCustomer, StoreOrderLine


@dataclass(frozen=True)
class QuoteLine:
    sku: str
    quantity: int
    kind: str
    list_amount: int
    licence_id: str | None = None


@dataclass(frozen=True)
class PricedLine:
    sku: str
    quantity: int
    kind: str
    list_amount: int
    discount_amount: int
    net_amount: int


@dataclass(frozen=True)
class Quote:
    partner_id: uuid.UUID
    level: Level | None
    rate_bp: int
    lines: list[PricedLine]
    no_discount_reason: str | None
    terms_version: int
    outcome: str
    """What an order placed now would be recorded with (`crediting.Outcome`), or the code it would be
    parked with."""


AMBIGUOUS_CUSTOMER = orders.AMBIGUOUS_CUSTOMER
NEW_CUSTOMER = crediting.NEW_CUSTOMER
_REASONS = {crediting.Outcome.NFR_LICENCE_SOLD: "nfr_licence"}
"""The quote's `no_discount_reason` where it names the outcome otherwise (kept for clients)."""


async def quote(
    session: AsyncSession,
    *,
    partner_id: uuid.UUID,
    company: str,
    country: str,
    email: str | None,
    vat_id: str | None,
    store_customer_id: str | None,
    lines: Sequence[QuoteLine],
    now: datetime,
) -> Quote:
    """The discount the partner gets now on these lines for this end customer, or why none.

    The applier's own decision (`order_decision.decide_order`) about the order the partner would
    place now, at list price: its outcome, level and the discount each line should get are the
    order's by construction. The facts are read as the applier reads them, but for the customer and
    balance locks the applier takes (a quote creates no balance and changes nothing but the R17 flag)."""
    partner = await partners.get(session, partner_id)
    in_force = await terms.in_force(session, now)
    program = in_force.terms
    unknown = sorted({line.sku for line in lines} - set(program.points_per_sku))
    if unknown:
        raise Invalid(f"Unknown SKU: {', '.join(unknown)}.", code="unknown_sku", skus=unknown)
    check = strong_identifiers(
        country=country, vat_id=vat_id, email=email, domain=None, store_customer_id=store_customer_id
    )
    ids = await customers_repo.customer_ids_for(session, check.identifiers)
    nfr = await directory.nfr_in(session, [line.licence_id for line in lines])
    if nfr:  # R17: not-for-resale licences are never sold
        directory.flag_nfr(session, nfr, source="quote", order_id=None, now=now)
    own = (await identifiers.own_identifiers(session, partner)).matches(check.identifiers)
    customer = NEW_CUSTOMER
    if len(ids) == 1 and (found := await customers_repo.get(session, ids[0])) is not None:
        customer = (await orders.customer_facts(session, Facts(), found, now))[0]
    standing = await partners.standing_at(session, partner_id, now, known=True)  # looked up above
    order = _hypothetical(partner_id, company, country, lines, now)
    facts = decisions.OrderFacts(
        now=now,
        terms_version=in_force.version,
        terms=program,
        customers_matched=len(ids),
        customer=customer,
        eligible=standing.eligible,
        points_before=await ledgers_repo.points_before(session, partner_id, now),
        own_company=(partner_id, own) if own is not None else None,
        nfr=tuple(n.licence_id for n in nfr),
    )
    decided = decisions.decide_order(order, facts)
    if isinstance(decided, decisions.Refusal):  # the order would be parked until an admin decides
        # (Ambiguous customer: what else parks an order, the quote refuses before or cannot meet.)
        why = "customer_ambiguous" if decided.code == AMBIGUOUS_CUSTOMER else decided.code
        return _quote(partner_id, None, lines, [0] * len(lines), why, in_force.version, decided.code)
    reason: str | None = None
    if not decided.earns:
        reason = _REASONS.get(decided.outcome, decided.outcome.value)
        if decided.outcome is crediting.Outcome.PARTNER_NOT_ELIGIBLE:
            reason = "partner_not_active" if standing.status != "active" else "agreement_not_accepted"
    # R03a: the level an order placed now is priced at; R12: the discount the applier will expect.
    level = decided.level if decided.earns else None
    discounts = [d.expected_discount.amount if d.expected_discount else 0 for d in decided.lines]
    quote = _quote(partner_id, level, lines, discounts, reason, in_force.version, decided.outcome.value)
    return replace(quote, rate_bp=crediting.resale_rate_bp(level, program))


def _hypothetical(
    partner_id: uuid.UUID, company: str, country: str, lines: Sequence[QuoteLine], now: datetime
) -> OrderPaidData:
    """The order a partner would place now for these lines, at list price (no discount, no tax).
    Built from the quote's own validated fields, not validated again as a delivery."""
    return OrderPaidData.model_construct(
        order_id="quote",
        placed_at=now,
        currency="",
        buyer=Buyer.model_construct(type="partner", partner_id=str(partner_id)),
        customer=StoreCustomer.model_construct(company=company, country=country),
        lines=[
            StoreOrderLine.model_construct(
                line_id=f"q{n}",
                sku=line.sku,
                quantity=line.quantity,
                kind="renewal" if line.kind == "renewal" else "new",
                licence_id=line.licence_id,
                term_end=None,
                list_amount=line.list_amount,
                discount_amount=0,
                tax_amount=0,
                paid_amount=line.list_amount,
            )
            for n, line in enumerate(lines)
        ],
    )


def _quote(
    partner_id: uuid.UUID,
    level: Level | None,
    lines: Sequence[QuoteLine],
    discounts: Sequence[int],
    reason: str | None,
    terms_version: int,
    outcome: str,
) -> Quote:
    priced = [
        PricedLine(line.sku, line.quantity, line.kind, line.list_amount, discount, line.list_amount - discount)
        for line, discount in zip(lines, discounts, strict=True)
    ]
    return Quote(partner_id, level, 0, priced, reason, terms_version, outcome)


async def mismatches(session: AsyncSession, *, limit: int, before_id: int | None) -> Sequence[DiscountMismatch]:
    """R12 mismatches kept for review, newest first."""
    return await orders_repo.mismatches(session, limit=limit, before_id=before_id)
