"""R12: the reseller price the store asks for before a partner buys for its customer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
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
from app.domain.rules.identifiers import strong_identifiers
from app.domain.rules.terms import Level


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

    Asked of the applier's own decisions (`app.domain.rules.crediting`) about an order the partner
    would place now: its outcome, and so whether a discount applies, is the order's by construction."""
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
    standing = await partners.standing_at(session, partner_id, now, known=True)  # looked up above
    nfr = await directory.nfr_in(session, [line.licence_id for line in lines])
    if nfr:  # R17: not-for-resale licences are never sold
        directory.flag_nfr(session, nfr, source="quote", order_id=None, now=now)
    own = (await identifiers.own_identifiers(session, partner)).matches(check.identifiers) is not None
    outcome: str
    reason: str | None
    if len(ids) > 1:  # the order would be parked until an admin decides which customer it is
        outcome, reason = AMBIGUOUS_CUSTOMER, "customer_ambiguous"
    else:
        facts = NEW_CUSTOMER
        if ids and (customer := await customers_repo.get(session, ids[0])) is not None:
            facts = (await orders.customer_facts(session, Facts(), customer, now))[0]
        attribution = crediting.attribute(at=now, buyer_partner_id=partner_id, customer=facts)
        decided, earns = crediting.outcome(
            attribution.outcome,
            eligible=standing.eligible if attribution.partner_id is not None else None,
            own_company=own,
            sells_nfr=bool(nfr),
        )
        outcome, reason = decided.value, None if earns else _REASONS.get(decided, decided.value)
        if decided is crediting.Outcome.PARTNER_NOT_ELIGIBLE:
            reason = "partner_not_active" if standing.status != "active" else "agreement_not_accepted"
    level: Level | None = None
    if reason is None:  # R03a: the level an order placed now is priced at
        level = program.level_for(await ledgers_repo.points_before(session, partner_id, now))
    priced = []
    for line in lines:  # R12: the discount the applier will expect on each line
        expected = crediting.expected_discount(list_amount=line.list_amount, level=level, why_none=None, terms=program)
        priced.append(
            PricedLine(
                line.sku,
                line.quantity,
                line.kind,
                line.list_amount,
                expected.amount,
                line.list_amount - expected.amount,
            )
        )
    rate = crediting.resale_rate_bp(level, program)
    return Quote(partner_id, level, rate, priced, reason, in_force.version, outcome)


async def mismatches(session: AsyncSession, *, limit: int, before_id: int | None) -> Sequence[DiscountMismatch]:
    """R12 mismatches kept for review, newest first."""
    return await orders_repo.mismatches(session, limit=limit, before_id=before_id)
