"""The reads a batch of orders needs, done once for the whole batch (see `memo`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, bindparam, select, text, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import directory as directory_repo
from app.db.repositories import ledgers as ledgers_repo
from app.db.repositories import memo
from app.db.repositories import orders as orders_repo
from app.db.repositories import partners as partners_repo
from app.db.repositories import statements as statements_repo
from app.db.repositories import terms as terms_repo
from app.db.tables import Customer, CustomerIdentifier, Partner, PartnerBalance, Relationship


@dataclass(frozen=True)
class OrderReads:
    """What one order of the batch will ask about."""

    order_id: str
    placed_at: datetime
    identifiers: Sequence[tuple[str, str]]
    """The customer's strong identifiers, (kind, value)."""
    buyer_partner_id: uuid.UUID | None
    licence_ids: Sequence[str]


async def prefetch(session: AsyncSession, orders: Sequence[OrderReads]) -> memo.BatchMemo:
    """Read and lock what these orders need, in a few statements, and install it as the session's
    memo (the caller drops it when the batch ends). Locks are taken in the one lock order
    (CONTRIBUTING.md): order ids, customers, relationships, licences, balances, each kind sorted, as
    the orders one at a time take them."""
    held = memo.BatchMemo()
    postgres = session.get_bind().dialect.name == "postgresql"
    order_ids = sorted({o.order_id for o in orders})
    if postgres and order_ids:
        await session.execute(_LOCK_ORDER_IDS, {"keys": [f"order:{order_id}" for order_id in order_ids]})
    held.locked_orders.update(order_ids)
    held.terms_refs = await terms_repo.all_refs(session)

    licence_ids = sorted({i for o in orders for i in o.licence_ids})
    if licence_ids:
        held.nfr = {n.licence_id: n for n in await directory_repo.nfr_by_licence_ids(session, licence_ids)}
    held.nfr_asked.update(licence_ids)

    pairs = sorted({pair for o in orders for pair in o.identifiers})
    if pairs:
        for owner, kind, value, customer in await session.execute(_CUSTOMERS, {"pairs": pairs}):
            held.identifier_owner[(kind, value)] = owner
            held.customers[owner] = customer
    held.identifiers_asked.update(pairs)

    customer_ids = sorted(held.customers)
    if customer_ids:
        held.relationships = dict.fromkeys(customer_ids)
        for relationship, partner in await session.execute(_RELATIONSHIPS, {"ids": customer_ids}):
            held.relationships[relationship.customer_id] = relationship
            partners_repo.keep(session, partner)

    buyers = sorted({o.buyer_partner_id for o in orders if o.buyer_partner_id is not None})
    if buyers:  # kept for `partners.known`, as the relationships' partners are
        for partner in await session.scalars(_PARTNERS, {"ids": buyers}):
            partners_repo.keep(session, partner)
    # R22: what each partner an order may credit ever declared as its own company's.
    declarers = sorted({*buyers, *(r.partner_id for r in held.relationships.values() if r is not None)})
    held.declared = await partners_repo.declared_identifiers_of(session, declarers)

    if licence_ids:  # before the balances, as every transaction locks them
        held.licences = await orders_repo.licences_for_update(session, licence_ids)
    held.licences_asked.update(licence_ids)

    # The partner each order will most likely credit: its buyer, or the relationship of its customer.
    credits: list[tuple[uuid.UUID, datetime]] = []
    for order in orders:
        partner_id: uuid.UUID | None = order.buyer_partner_id
        if partner_id is None:
            owners = {named for pair in order.identifiers if (named := held.identifier_owner.get(pair))}
            found: Relationship | None = held.relationships.get(owners.pop()) if len(owners) == 1 else None
            partner_id = found.partner_id if found is not None else None
        if partner_id is not None:
            credits.append((partner_id, order.placed_at))
    partner_ids = sorted({p for p, _ in credits})
    if partner_ids:
        held.facts = await partners_repo.standing_facts_of(session, partner_ids)
        # Only balances that exist: one an order creates is created as one event at a time would.
        held.balances = {b.partner_id: b for b in await session.scalars(_BALANCES, {"ids": partner_ids})}
        if postgres:  # after the locks: this statement's snapshot sees what their holders committed
            wanted = sorted(pair for pair in set(credits) if pair[0] in held.balances)
            sums = await session.execute(
                _POINTS_BEFORE, {"partners": [p for p, _ in wanted], "moments": [at for _, at in wanted]}
            )
            for n, points in sums:
                held.points_before[wanted[n - 1]] = int(points)

    memo.install(session, held)
    return held


async def write_pending(session: AsyncSession, held: memo.BatchMemo) -> None:
    """What the batch's events made and did not write yet: their ledger entries, then the money
    balances and quarter accruals of their commission, one statement each."""
    await ledgers_repo.write_pending_entries(session)
    accrued = [
        {"partner_id": p, "quarter": quarter, "currency": currency, "accrued": amount}
        for (p, quarter, currency), amount in sorted(held.accrued.items())
    ]
    moved = [{"partner_id": p, "currency": c, "amount": a} for (p, c), a in sorted(held.money.items())]
    held.accrued, held.money = {}, {}
    if accrued:
        await statements_repo.add_accrued_many(session, accrued)
    if moved:
        await ledgers_repo.add_money_to_balances(session, moved)


_LOCK_ORDER_IDS = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM unnest(CAST(:keys AS text[])) AS k"
).bindparams(bindparam("keys", type_=postgresql.ARRAY(String())))
"""Each order id's lock (`orders.lock_order_id`), in the order given."""

_CUSTOMERS = (
    select(col(CustomerIdentifier.customer_id), col(CustomerIdentifier.kind), col(CustomerIdentifier.value), Customer)
    .join(Customer, col(Customer.id) == col(CustomerIdentifier.customer_id))
    .where(tuple_(col(CustomerIdentifier.kind), col(CustomerIdentifier.value)).in_(bindparam("pairs", expanding=True)))
    .order_by(col(Customer.id))
    .with_for_update(of=Customer)
    .execution_options(populate_existing=True)
)

_BALANCES = (
    select(PartnerBalance)
    .where(col(PartnerBalance.partner_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(PartnerBalance.partner_id))
    .with_for_update()
    .execution_options(populate_existing=True)
)

_PARTNERS = select(Partner).where(col(Partner.id).in_(bindparam("ids", expanding=True)))

_RELATIONSHIPS = (
    select(Relationship, Partner)
    .join(Partner, col(Partner.id) == col(Relationship.partner_id))
    .where(col(Relationship.customer_id).in_(bindparam("ids", expanding=True)))
    .order_by(col(Relationship.customer_id))
    .with_for_update(of=Relationship)
)

_POINTS_BEFORE = text(
    "SELECT v.n, (SELECT coalesce(sum(e.points), 0) FROM points_entries e "
    "WHERE e.partner_id = v.p AND e.effective_at < v.at) "
    "FROM unnest(CAST(:partners AS uuid[]), CAST(:moments AS timestamptz[])) WITH ORDINALITY AS v(p, at, n)"
).bindparams(
    bindparam("partners", type_=postgresql.ARRAY(postgresql.UUID(as_uuid=True))),
    bindparam("moments", type_=postgresql.ARRAY(postgresql.TIMESTAMP(timezone=True))),
)
"""Postgres: `ledgers.points_before` of each (partner, moment) pair, by its position (from 1)."""
