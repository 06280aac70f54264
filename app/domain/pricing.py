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
from app.domain import directory, identifiers, partners, terms
from app.domain.errors import Invalid
from app.domain.orders import resale_customer_status
from app.domain.rules.identifiers import strong_identifiers
from app.domain.rules.money import commission
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
    """The discount the partner gets now on these lines for this end customer, or why none."""
    partner = await partners.get(session, partner_id)
    in_force = await terms.in_force(session, now)
    program = in_force.terms
    unknown = sorted({line.sku for line in lines} - set(program.points_per_sku))
    if unknown:
        raise Invalid(f"Unknown SKU: {', '.join(unknown)}.", code="unknown_sku", skus=unknown)
    reason: str | None = None
    standing = await partners.standing_at(session, partner_id, now, known=True)  # looked up above
    nfr = await directory.nfr_in(session, [line.licence_id for line in lines])
    if nfr:  # R17: not-for-resale licences are never sold
        directory.flag_nfr(session, nfr, source="quote", order_id=None, now=now)
        reason = "nfr_licence"
    elif standing.status != "active":
        reason = "partner_not_active"
    elif not standing.agreement.bound:
        reason = "agreement_not_accepted"
    else:
        check = strong_identifiers(
            country=country, vat_id=vat_id, email=email, domain=None, store_customer_id=store_customer_id
        )
        ids = await customers_repo.customer_ids_for(session, check.identifiers)
        if (await identifiers.own_identifiers(session, partner)).matches(check.identifiers) is not None:
            reason = "own_company"  # R22: a partner's own company is never its customer
        elif len(ids) > 1:
            reason = "customer_ambiguous"
        else:
            customer = await customers_repo.get(session, ids[0]) if ids else None
            reason, _, _ = await resale_customer_status(session, partner_id, customer, now)
    level: Level | None = None
    rate = 0
    if reason is None:
        level = program.level_for(await ledgers_repo.points_before(session, partner_id, now))
        rate = program.resale_rate_bp(level)
    priced = []
    for line in lines:
        discount = commission(line.list_amount, rate)
        priced.append(
            PricedLine(line.sku, line.quantity, line.kind, line.list_amount, discount, line.list_amount - discount)
        )
    return Quote(partner_id, level, rate, priced, reason, in_force.version)


async def mismatches(session: AsyncSession, *, limit: int, before_id: int | None) -> Sequence[DiscountMismatch]:
    """R12 mismatches kept for review, newest first."""
    return await orders_repo.mismatches(session, limit=limit, before_id=before_id)
