"""The reads a batch of store events needs, done once for the whole batch: set-based statements
whose answers are returned as one value (`Gathered`). What the batch then does with them is the
domain's (`app.domain.batch`); nothing here knows a batch is running."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, literal, null, select, text, tuple_, union_all
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import customers as customers_repo
from app.db.repositories import directory as directory_repo
from app.db.repositories import ledgers as ledgers_repo
from app.db.repositories import orders as orders_repo
from app.db.repositories import partners as partners_repo
from app.db.repositories import terms as terms_repo
from app.db.tables import (
    Customer,
    CustomerIdentifier,
    Licence,
    NfrLicence,
    Order,
    OrderLine,
    Partner,
    PartnerBalance,
    Refund,
    Registration,
    Relationship,
    WebhookEvent,
)
from app.domain.rules.names import LedgerKind, Rule

REFUNDED_MONEY = Rule.refunded(LedgerKind.MONEY)
REFUNDED_POINTS = Rule.refunded(LedgerKind.POINTS)
REVERSAL = Rule.REFUND
"""What a refund reverses (R14): the rules whose credits it takes back, and the rule it takes them under."""

REGISTRATION_STATES = ("live", "expired", "converted")
"""The registrations an order may be attributed by (R07, R08): not withdrawn."""


@dataclass(frozen=True)
class OrderReads:
    """What one order of the batch will ask about."""

    order_id: str
    placed_at: datetime
    identifiers: Sequence[tuple[str, str]]
    """The customer's strong identifiers, (kind, value)."""
    buyer_partner_id: uuid.UUID | None
    licence_ids: Sequence[str]
    renewed: Sequence[str] = ()
    """The licences its renewal lines name."""


@dataclass(frozen=True)
class RefundReads:
    """What one refund of the batch will ask about (R14)."""

    refund_id: str
    order_id: str
    line_ids: Sequence[str]


@dataclass(frozen=True)
class LapseReads:
    """What one lapse of the batch will ask about (R10)."""

    licence_id: str
    lapsed_at: datetime | None


@dataclass(frozen=True)
class Gathered:
    """What `gather` read, as it was read. Rows are the session's objects (locked where said)."""

    locked_orders: frozenset[str] = frozenset()
    """Order ids whose lock (`orders.lock_order_id`) this transaction holds."""
    recorded_orders: dict[str, str] = field(default_factory=dict)
    """The order ids among the batch's that were recorded before, with their content hash."""
    waiting_subjects: frozenset[str] = frozenset()
    """The subjects asked about (`order:<id>`, `licence:<id>`) that a parked event waits for."""
    terms_refs: list[tuple[int, datetime, str]] = field(default_factory=list)
    """(version, effective_from, digest) of every terms version, latest first."""
    nfr_asked: frozenset[str] = frozenset()
    nfr: dict[str, NfrLicence] = field(default_factory=dict)
    """The not-for-resale licences among `nfr_asked`, by licence id."""
    identifiers_asked: frozenset[tuple[str, str]] = frozenset()
    identifier_owner: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)
    customers: dict[uuid.UUID, Customer] = field(default_factory=dict)
    """The customers `identifier_owner` names, locked."""
    relationships: dict[uuid.UUID, Relationship | None] = field(default_factory=dict)
    """By customer id: its relationship (locked), or None; only for the customers read."""
    registrations: dict[uuid.UUID, list[Registration]] = field(default_factory=dict)
    """By customer id: its registrations in `REGISTRATION_STATES`, for the customers read whose
    orders may be attributed by a registration (no relationship, or one that ended or began later)."""
    partners: dict[uuid.UUID, Partner] = field(default_factory=dict)
    """The buying partners and the partners of the relationships read."""
    declared: dict[uuid.UUID, list[tuple[str, str]]] = field(default_factory=dict)
    """R22: every (kind, value) each partner read ever declared as its own company's."""
    facts: dict[uuid.UUID, partners_repo.StandingFacts] = field(default_factory=dict)
    """`partners.standing_facts` by partner id."""
    balances: dict[uuid.UUID, PartnerBalance] = field(default_factory=dict)
    """Partner balances that exist, locked."""
    points_before: dict[tuple[uuid.UUID, datetime], int] = field(default_factory=dict)
    """Points effective before a moment (Postgres; SQLite reads them with the balance's lock)."""
    licences_asked: frozenset[str] = frozenset()
    licences: dict[str, Licence] = field(default_factory=dict)
    """The licences among `licences_asked` that exist, locked."""
    refunds_asked: frozenset[str] = frozenset()
    refunds: dict[str, Refund] = field(default_factory=dict)
    """The refunds among `refunds_asked` recorded before, by refund id."""
    refunded_orders: dict[str, Order | None] = field(default_factory=dict)
    """The orders the refunds name, by order id (None: not received)."""
    refund_lines: dict[str, dict[str, OrderLine]] = field(default_factory=dict)
    """By order id of `refunded_orders`: its lines the refunds name, locked, by the store's line id."""
    earnings: dict[int, ledgers_repo.LineEarnings] = field(default_factory=dict)
    """What the ledgers hold of each line of `refund_lines` (R14), by line id."""
    standing: dict[str, int] = field(default_factory=dict)
    """The points standing for each licence of the batch's lapses, renewals and refunded lines (R10)."""
    lapse_entries: dict[int, int] = field(default_factory=dict)
    """The points of the entry that lapsed each lapsed licence of the batch, by entry id (R10)."""
    renewed_until: dict[str, datetime | None] = field(default_factory=dict)
    """For each licence a lapse of the batch names with its moment: the latest end a renewal gave it
    past its first term (None: none did), which tells a stale lapse (R10)."""


async def gather(
    session: AsyncSession,
    orders: Sequence[OrderReads],
    subjects: Sequence[str],
    refunds: Sequence[RefundReads] = (),
    lapses: Sequence[LapseReads] = (),
) -> Gathered:
    """Read and lock what these orders, refunds and lapses need, in a few statements whatever their
    number, and which of these `subjects` parked events wait for. Locks are taken in the one lock
    order (CONTRIBUTING.md): order ids, customers, relationships, licences, refunded lines,
    balances, each kind sorted."""
    postgres = session.get_bind().dialect.name == "postgresql"
    order_ids = sorted({o.order_id for o in orders} | {r.order_id for r in refunds})
    if postgres and order_ids:
        await session.execute(_LOCK_ORDER_IDS, {"keys": [f"order:{order_id}" for order_id in order_ids]})
    # After the locks: an order recorded, or an event parked, by their holders is seen.
    recorded, waiting = await _recorded_and_waiting(session, order_ids, sorted(set(subjects)))
    terms_refs = await terms_repo.all_refs(session)

    licence_ids = sorted({i for o in orders for i in o.licence_ids})
    nfr = {n.licence_id: n for n in await directory_repo.nfr_by_licence_ids(session, licence_ids)}

    pairs = sorted({pair for o in orders for pair in o.identifiers})
    identifier_owner: dict[tuple[str, str], uuid.UUID] = {}
    customers: dict[uuid.UUID, Customer] = {}
    if pairs:
        for owner, kind, value, customer in await session.execute(_CUSTOMERS, {"pairs": pairs}):
            identifier_owner[(kind, value)] = owner
            customers[owner] = customer

    customer_ids = sorted(customers)
    relationships: dict[uuid.UUID, Relationship | None] = dict.fromkeys(customer_ids)
    partners: dict[uuid.UUID, Partner] = {}
    if customer_ids:
        for relationship, partner in await session.execute(_RELATIONSHIPS, {"ids": customer_ids}):
            relationships[relationship.customer_id] = relationship
            partners[partner.id] = partner

    # Customers whose orders may be attributed by a registration (R07, R08): no relationship, one that
    # ended, or one established after an order was placed (a late order).
    maybe_registered = sorted(
        {
            named
            for order in orders
            for pair in order.identifiers
            if (named := identifier_owner.get(pair)) is not None
            and (
                (held := relationships.get(named)) is None
                or held.ended_at is not None
                or order.placed_at < held.first_order_at
            )
        }
    )
    registrations = await customers_repo.registrations_of(session, maybe_registered, states=REGISTRATION_STATES)

    buyers = sorted({o.buyer_partner_id for o in orders if o.buyer_partner_id is not None})
    if buyers:
        for partner in await session.scalars(_PARTNERS, {"ids": buyers}):
            partners[partner.id] = partner
    # R22: what each partner an order may credit ever declared as its own company's.
    declarers = sorted({*buyers, *(r.partner_id for r in relationships.values() if r is not None)})
    declared = await partners_repo.declared_identifiers_of(session, declarers)

    lapsed_ids = sorted({lapse.licence_id for lapse in lapses})
    # Before the refunded lines and the balances.
    licences = await orders_repo.licences_for_update(session, sorted({*licence_ids, *lapsed_ids}))
    refunded = await _refunds(session, refunds)
    renewed = sorted({i for o in orders for i in o.renewed if i in licences})
    refunded_licences = {line.licence_id for lines in refunded[2].values() for line in lines.values()}
    standing_ids = sorted({*lapsed_ids, *renewed, *(i for i in refunded_licences if i)})
    lapse_entry_ids = sorted(
        {lic.lapse_entry_id for i in renewed if (lic := licences[i]).status == "lapsed" and lic.lapse_entry_id}
    )
    standing, lapse_entries = await ledgers_repo.standing_and_entries(session, standing_ids, lapse_entry_ids)
    stale_asked = {lapse.licence_id for lapse in lapses if lapse.lapsed_at is not None and lapse.licence_id in licences}
    renewed_until = await orders_repo.renewed_until(session, sorted(stale_asked))

    # The partner each order will most likely credit: its buyer, or the relationship of its customer.
    credits: list[tuple[uuid.UUID, datetime]] = []
    for order in orders:
        partner_id: uuid.UUID | None = order.buyer_partner_id
        if partner_id is None:
            owners = {named for pair in order.identifiers if (named := identifier_owner.get(pair))}
            found = relationships.get(owners.pop()) if len(owners) == 1 else None
            partner_id = found.partner_id if found is not None else None
        if partner_id is not None:
            credits.append((partner_id, order.placed_at))
    # And the partners whose points the batch's renewals, lapses and refunds move.
    renewing = {p for i in renewed if (p := licences[i].partner_id) is not None}  # R04 after a lapse, too
    others = {p for i in lapsed_ids if i in licences and (p := licences[i].partner_id) is not None}
    others |= {e.points_partner for e in refunded[3].values() if e.points_partner is not None}
    partner_ids = sorted({p for p, _ in credits} | renewing | others)
    facts: dict[uuid.UUID, partners_repo.StandingFacts] = {}
    balances: dict[uuid.UUID, PartnerBalance] = {}
    points_before: dict[tuple[uuid.UUID, datetime], int] = {}
    if partner_ids:
        standing_of = sorted({p for p, _ in credits} | renewing)
        facts = await partners_repo.standing_facts_of(session, standing_of) if standing_of else {}
        # Only balances that exist: one an order creates is created when that order needs it.
        balances = {b.partner_id: b for b in await session.scalars(_BALANCES, {"ids": partner_ids})}
        wanted = sorted(pair for pair in set(credits) if pair[0] in balances)
        if postgres and wanted:  # after the locks: this statement's snapshot sees what their holders committed
            sums = await session.execute(
                _POINTS_BEFORE, {"partners": [p for p, _ in wanted], "moments": [at for _, at in wanted]}
            )
            for n, points in sums:
                points_before[wanted[n - 1]] = int(points)
    return Gathered(
        locked_orders=frozenset(order_ids),
        recorded_orders=recorded,
        waiting_subjects=frozenset(waiting),
        terms_refs=terms_refs,
        nfr_asked=frozenset(licence_ids),
        nfr=nfr,
        identifiers_asked=frozenset(pairs),
        identifier_owner=identifier_owner,
        customers=customers,
        relationships=relationships,
        registrations=registrations,
        partners=partners,
        declared=declared,
        facts=facts,
        balances=balances,
        points_before=points_before,
        licences_asked=frozenset({*licence_ids, *lapsed_ids}),
        licences=licences,
        refunds_asked=frozenset(r.refund_id for r in refunds),
        refunds=refunded[0],
        refunded_orders=refunded[1],
        refund_lines=refunded[2],
        earnings=refunded[3],
        standing=standing,
        lapse_entries=lapse_entries,
        renewed_until=renewed_until,
    )


async def _refunds(
    session: AsyncSession, refunds: Sequence[RefundReads]
) -> tuple[
    dict[str, Refund],
    dict[str, Order | None],
    dict[str, dict[str, OrderLine]],
    dict[int, ledgers_repo.LineEarnings],
]:
    """The refunds recorded before, the orders they name, the lines they name (locked) and what the
    ledgers hold of each: one statement each, whatever the number of refunds."""
    if not refunds:
        return {}, {}, {}, {}
    refund_ids = sorted({r.refund_id for r in refunds})
    recorded = {
        r.refund_id: r for r in await session.scalars(select(Refund).where(col(Refund.refund_id).in_(refund_ids)))
    }
    order_ids = sorted({r.order_id for r in refunds})
    found: dict[str, Order | None] = dict.fromkeys(order_ids)
    for order in await session.scalars(select(Order).where(col(Order.order_id).in_(order_ids))):
        found[order.order_id] = order
    received = [order_id for order_id, order in found.items() if order is not None]
    wanted = {(r.order_id, line_id) for r in refunds for line_id in r.line_ids}
    lines: dict[str, dict[str, OrderLine]] = {order_id: {} for order_id in received}
    if received:
        for line in await orders_repo.lines_of_orders_for_update(session, received):
            if (line.order_id, line.line_id) in wanted:
                lines[line.order_id][line.line_id] = line
    line_ids = [line.id for named in lines.values() for line in named.values() if line.id is not None]
    earnings = await ledgers_repo.line_earnings(
        session, line_ids, money_rules=REFUNDED_MONEY, points_rules=REFUNDED_POINTS, reversal=REVERSAL
    )
    return recorded, found, lines, earnings


async def _recorded_and_waiting(
    session: AsyncSession, order_ids: Sequence[str], subjects: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """The content hash of each recorded order among `order_ids`, and the `subjects` a parked event
    waits for: one statement for both."""
    parts: list[Any] = []
    if order_ids:
        parts.append(
            select(literal("order"), col(Order.order_id), col(Order.content_hash)).where(
                col(Order.order_id).in_(bindparam("order_ids", expanding=True))
            )
        )
    if subjects:
        parts.append(
            select(literal("waiting"), col(WebhookEvent.waiting_for), null())
            .where(
                col(WebhookEvent.waiting_for).in_(bindparam("subjects", expanding=True)),
                col(WebhookEvent.status) == "parked",
            )
            .distinct()
        )
    if not parts:
        return {}, []
    params = {"order_ids": list(order_ids), "subjects": list(subjects)}
    stmt: Any = union_all(*parts) if len(parts) > 1 else parts[0]
    rows: list[tuple[str, str, str | None]] = [(r[0], r[1], r[2]) for r in await session.execute(stmt, params)]
    recorded = {order_id: str(digest) for kind, order_id, digest in rows if kind == "order"}
    return recorded, sorted({subject for kind, subject, _ in rows if kind == "waiting"})


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
