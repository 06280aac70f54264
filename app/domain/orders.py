"""What an order, a refund and a lapse do to a partner's ledgers (R03a, R04, R08-R15).

Each function reads the facts its event needs from its batch's `Facts` (`app.domain.batch`), asks the
pure decisions of
`app.domain.rules.crediting` (who the order belongs to, what it comes to, what each line earns,
what a renewal, a lapse or a refund does to points and commission) and writes what they decide.
Every function here runs inside the caller's transaction and raises `Park` when the event cannot
be applied yet, or `AlreadyRecorded` for an order or refund recorded before: both before it writes
anything, so the event's outcome is kept and the batch goes on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import batch as batch_repo
from app.db.repositories import orders as repo
from app.db.tables import (
    Customer,
    DiscountMismatch,
    Licence,
    NfrLicence,
    Order,
    OrderLine,
    Partner,
    Refund,
    Registration,
    Relationship,
)
from app.domain import batch, directory, order_flags, partners, registrations
from app.domain.batch import Facts
from app.domain.errors import NotFound
from app.domain.identifiers import own_company_of
from app.domain.ledger import Ledger, Posting
from app.domain.rules import crediting
from app.domain.rules import order_decision as decisions
from app.domain.rules.identifiers import Identifier, IdentifierCheck, strong_identifiers
from app.domain.rules.names import Rule
from app.domain.rules.terms import Terms
from app.domain.store_events import OrderPaidData, OrderRefundedData, content_hash

AMBIGUOUS_CUSTOMER = decisions.AMBIGUOUS_CUSTOMER


class Park(Exception):
    """The event cannot be applied (yet): kept with this reason until an admin or its cause replays it."""

    def __init__(self, code: str, detail: str, *, waiting_for: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.waiting_for = waiting_for


class AlreadyRecorded(Exception):
    """The order or refund was recorded before; found before anything of the event was written."""


Contended = batch.Contended


class Ledgers:
    """The ledgers an event touches, each partner's balance locked once."""

    def __init__(self, session: AsyncSession, facts: Facts, now: datetime, terms_now: Terms) -> None:
        self.session, self.facts, self.now, self.terms_now = session, facts, now, terms_now
        self._open: dict[uuid.UUID, Ledger] = {}

    async def of(self, partner_id: uuid.UUID) -> Ledger:
        if partner_id not in self._open:
            self._open[partner_id] = await Ledger.open(self.session, self.facts, partner_id, self.now, self.terms_now)
        return self._open[partner_id]

    def settle(self) -> None:
        """Hand every ledger's money totals to the batch: call once the event's entries are all made."""
        for ledger in self._open.values():
            ledger.settle()


def _relationship_fact(row: Relationship | None) -> crediting.RelationshipFact | None:
    if row is None:
        return None
    return crediting.RelationshipFact(row.partner_id, row.mode, row.first_order_at, row.ended_at)


async def customer_facts(
    session: AsyncSession, facts: Facts, customer: Customer, at: datetime
) -> tuple[crediting.CustomerFacts, Relationship | None, dict[uuid.UUID, Registration]]:
    """What attribution needs to know of the customer at `at` (`crediting.attribute`), with the rows
    behind it: its relationship (locked) and the registrations read, by id."""
    relationship = await facts.relationship(session, customer.id)
    fact = _relationship_fact(relationship)
    registrations: dict[uuid.UUID, Registration] = {}
    if crediting.registrations_needed(fact, at):
        for row in await facts.covering(session, customer.id, at):
            registrations[row.id] = row
    known = crediting.CustomerFacts(
        first_purchase_at=customer.first_purchase_at,
        relationship=fact,
        registrations=tuple(
            crediting.RegistrationFact(r.id, r.partner_id, r.registered_at, r.expires_at, r.state)
            for r in registrations.values()
        ),
    )
    return known, relationship, registrations


def _establish(
    session: AsyncSession,
    facts: Facts,
    registration: Registration,
    customer: Customer,
    order: OrderPaidData,
    mode: str,
) -> None:
    relationship = Relationship(
        partner_id=registration.partner_id,
        customer_id=customer.id,
        mode=mode,
        first_order_at=order.placed_at,
        established_by_order_id=order.order_id,
        resale_since=order.placed_at if mode == "resale" else None,
    )
    facts.establish(session, relationship)
    registration.state = "converted"
    registration.ended_at = order.placed_at
    registration.converted_order_id = order.order_id
    registrations.record_ended(session, registration)


def _take_effect(
    session: AsyncSession,
    facts: Facts,
    attribution: crediting.Attribution,
    order: OrderPaidData,
    customer: Customer,
    relationship: Relationship | None,
    covering: dict[uuid.UUID, Registration],
    now: datetime,
) -> None:
    """Write what the attribution decided: the relationship it establishes or turns to resale, the
    conflicts it flags."""
    for registration in attribution.conflicts:  # R08: the relationship stands; flagged
        assert relationship is not None  # a conflict is with the customer's relationship
        order_flags.flag(
            session,
            kind="relationship_conflict",
            order_id=order.order_id,
            order_line_id=None,
            partner_id=registration.partner_id,
            detail=f"placed {order.placed_at.isoformat()} within this partner's registration of the customer "
            f"(until {registration.expires_at.isoformat()}), but the customer's relationship is partner "
            f"{relationship.partner_id}'s (first order {relationship.first_order_at.isoformat()}): it stands and "
            "the order earns nothing; an adjustment may make up for it",
            now=now,
        )
    if attribution.establish is not None:
        assert attribution.mode is not None
        _establish(session, facts, covering[attribution.establish.id], customer, order, attribution.mode)
    elif attribution.becomes_resale:  # referral becomes resale, never the other way
        assert relationship is not None
        relationship.mode = "resale"
        relationship.resale_since = order.placed_at


async def _own_company(
    session: AsyncSession,
    facts: Facts,
    buyer: Partner | None,
    attributed: uuid.UUID | None,
    identifiers: Sequence[Identifier],
) -> tuple[uuid.UUID, str] | None:
    """R22: the buying or attributed partner whose own company the end customer is, and what matched."""
    candidates = [buyer] if buyer is not None else []
    if (
        attributed is not None
        and (buyer is None or attributed != buyer.id)
        and (partner := await facts.partner(session, attributed)) is not None
    ):
        candidates.append(partner)
    for partner in candidates:
        matched = own_company_of(partner, await facts.declared(session, partner.id)).matches(identifiers)
        if matched is not None:
            return partner.id, matched
    return None


_buyer_partner_id = decisions.buyer_partner_id


def _identifiers(data: OrderPaidData) -> IdentifierCheck:
    return strong_identifiers(
        country=data.customer.country,
        vat_id=data.customer.vat_id,
        email=data.customer.email,
        domain=None,
        store_customer_id=data.customer.store_customer_id,
    )


def reads_of(data: OrderPaidData) -> batch_repo.OrderReads:
    """What `apply_order` will read for this order, for a batch to read up front."""
    return batch_repo.OrderReads(
        order_id=data.order_id,
        placed_at=data.placed_at,
        identifiers=[(i.kind, i.value) for i in _identifiers(data).identifiers],
        buyer_partner_id=_buyer_partner_id(data),
        licence_ids=[line.licence_id for line in data.lines if line.licence_id],
        renewed=[line.licence_id for line in data.lines if line.kind == "renewal" and line.licence_id],
    )


def refund_reads_of(data: OrderRefundedData) -> batch_repo.RefundReads:
    """What `apply_refund` will read for this refund, for a batch to read up front."""
    return batch_repo.RefundReads(data.refund_id, data.order_id, [line.line_id for line in data.lines])


@dataclass
class _Gathered:
    """The rows behind an order's facts, for writing its decision."""

    terms_version: int = 0
    terms_now: Terms | None = None
    customer: Customer | None = None
    matches: list[tuple[uuid.UUID, str, str]] | None = None
    relationship: Relationship | None = None
    covering: dict[uuid.UUID, Registration] | None = None
    licences: dict[str, Licence] | None = None
    nfr: list[NfrLicence] | None = None


async def gather_order(
    session: AsyncSession, facts: Facts, data: OrderPaidData, check: IdentifierCheck, now: datetime
) -> tuple[decisions.OrderFacts, _Gathered]:
    """Read what the rules ask about the order (`decisions.OrderFacts`), through the batch's facts,
    stopping where the rules will refuse it; and the rows behind them."""
    rows = _Gathered()
    known = decisions.OrderFacts(now=now)
    if decisions.refusal_before_facts(data, now) is not None:
        return known, rows
    try:
        in_force, current = await facts.terms_then_and_now(session, data.placed_at, now)
    except NotFound as exc:
        return replace(known, no_terms=exc.detail), rows
    known = replace(known, terms_version=in_force.version, terms=in_force.terms, terms_now=current.terms)
    rows.terms_version, rows.terms_now = in_force.version, current.terms
    if decisions.refusal_of_terms(data, in_force.version, in_force.terms, None) is not None:
        return known, rows
    buyer_id = _buyer_partner_id(data)
    buyer = await facts.partner(session, buyer_id) if buyer_id is not None else None
    known = replace(known, buyer_known=data.buyer.type != "partner" or buyer is not None)
    if not known.buyer_known:
        return known, rows
    rows.matches, found = await facts.matching(session, check.identifiers)
    known = replace(known, customers_matched=len(found))
    if len(found) > 1:
        return known, rows
    rows.customer = next(iter(found.values()), None)
    if rows.customer is not None:
        customer_facts_, rows.relationship, rows.covering = await customer_facts(
            session, facts, rows.customer, data.placed_at
        )
        known = replace(known, customer=customer_facts_)
    attribution = crediting.attribute(at=data.placed_at, buyer_partner_id=buyer_id, customer=known.customer)
    if decisions.refusal_of_customer(len(found), attribution) is not None:
        return known, rows
    # Every licence the order names, locked in one read before any balance (the lock order, in
    # CONTRIBUTING.md).
    rows.licences = await facts.licences(session, [line.licence_id for line in data.lines])
    if attribution.partner_id is not None:
        standing = partners.standing_from(await facts.standing_facts(session, attribution.partner_id), data.placed_at)
        _balance, before = await facts.balance_and_points_before(session, attribution.partner_id, now, data.placed_at)
        known = replace(known, eligible=standing.eligible, points_before=before)
    renewed = {line.licence_id for line in data.lines if line.kind == "renewal" and line.licence_id}
    credited = [attribution.partner_id, *(rows.licences[i].partner_id for i in renewed if i in rows.licences)]
    rows.nfr = await facts.nfr(session, [line.licence_id for line in data.lines])
    return replace(
        known,
        own_company=await _own_company(session, facts, buyer, attribution.partner_id, check.identifiers),
        nfr=tuple(n.licence_id for n in rows.nfr),
        licences=await _licence_facts(session, facts, data, rows.licences),
        balances=await facts.balance_facts(session, credited, now),
    ), rows


async def _licence_facts(
    session: AsyncSession, facts: Facts, data: OrderPaidData, licences: dict[str, Licence]
) -> dict[str, decisions.LicenceFact]:
    """R10: the licences an order names, with what its renewals may ask of them."""
    renewed = {line.licence_id for line in data.lines if line.kind == "renewal" and line.licence_id}
    known: dict[str, decisions.LicenceFact] = {}
    for licence_id, licence in licences.items():
        revoked: int | None = None
        eligible: bool | None = None
        if licence_id in renewed and licence.partner_id is not None and licence.status == "lapsed":
            taken = await facts.lapse_taken(session, licence)
            if taken is not None:
                revoked = -taken if taken < 0 else 0
            if revoked:
                standing = await facts.standing_facts(session, licence.partner_id)
                eligible = partners.standing_from(standing, data.placed_at).eligible
        known[licence_id] = replace(_licence_fact(licence), revoked_by_lapse=revoked, partner_eligible=eligible)
    for licence_id in decisions.licences_needing_standing(data, known):
        standing_points = await facts.points_for_licence(session, licence_id)
        known[licence_id] = replace(known[licence_id], standing_points=standing_points)
    return known


def _licence_fact(licence: Licence) -> decisions.LicenceFact:
    return decisions.LicenceFact(
        licence_id=licence.licence_id,
        partner_id=licence.partner_id,
        quantity=licence.quantity,
        points_per_unit=licence.points_per_unit,
        term_end=licence.term_end,
        status=licence.status,
    )


async def apply_order(
    session: AsyncSession, facts: Facts, data: OrderPaidData, *, now: datetime, event_id: int | None
) -> Order:
    """Record an order and credit what it earns: its facts gathered, the order decided
    (`decisions.decide_order`), the decision written. Raises `Park` or `AlreadyRecorded` before
    writing anything."""
    await facts.lock_order(session, data.order_id)
    if await facts.recorded_hash(session, data.order_id) is not None:
        raise AlreadyRecorded(data.order_id)
    check = _identifiers(data)
    known, rows = await gather_order(session, facts, data, check, now)
    decision = decisions.decide_order(data, known)
    if isinstance(decision, decisions.Refusal):
        raise Park(decision.code, decision.detail, waiting_for=decision.waiting_for)
    return await _write_order(session, facts, data, check, decision, known, rows, now=now, event_id=event_id)


async def _write_order(
    session: AsyncSession,
    facts: Facts,
    data: OrderPaidData,
    check: IdentifierCheck,
    decision: decisions.OrderDecision,
    known: decisions.OrderFacts,
    rows: _Gathered,
    *,
    now: datetime,
    event_id: int | None,
) -> Order:
    """Write what the order's decision says: its customer, the attribution's effects, its flags, the
    order and its lines, its licences, its entries."""
    customer = _write_customer(facts, data, check, rows, now)
    _take_effect(session, facts, decision.attribution, data, customer, rows.relationship, rows.covering or {}, now)
    if customer.first_purchase_at is None or data.placed_at < customer.first_purchase_at:
        customer.first_purchase_at = data.placed_at  # R08: now an existing customer, whoever sold it
    if known.own_company is not None:  # R22: a partner's own company is never its customer: flagged
        own_partner, matched = known.own_company
        order_flags.flag(
            session,
            kind="own_company",
            order_id=data.order_id,
            order_line_id=None,
            partner_id=own_partner,
            detail=f"the end customer is the partner's own company ({matched})",
            now=now,
        )
    if rows.nfr:  # R17: an order that tries to sell a not-for-resale licence earns nothing and is flagged
        directory.flag_nfr(session, rows.nfr, source="order", order_id=data.order_id, now=now)
    buyer_id = _buyer_partner_id(data)
    order = Order(
        order_id=data.order_id,
        placed_at=data.placed_at,
        currency=data.currency,
        buyer_partner_id=buyer_id,
        customer_id=customer.id,
        content_hash=content_hash(data),
        terms_version=rows.terms_version,
        partner_id=decision.attribution.partner_id,
        mode=decision.attribution.mode,
        level=decision.level.value if decision.level else None,
        outcome=decision.outcome.value,
        webhook_event_id=event_id,
        recorded_at=now,
    )
    lines = [
        repo.NewLine(
            order_id=data.order_id,
            line_id=line.line_id,
            sku=line.sku,
            quantity=line.quantity,
            kind=line.kind,
            licence_id=line.licence_id,
            term_end=line.term_end,
            list_amount=line.list_amount,
            discount_amount=line.discount_amount,
            tax_amount=line.tax_amount,
            paid_amount=line.paid_amount,
        )
        for line in data.lines
    ]
    # Recorded once everything about it is known, with the batch's other orders: one INSERT each for
    # the orders and their lines, no UPDATE. The order id's lock (taken first) makes a concurrent
    # delivery of the same order wait and then find it recorded.
    facts.record(order, lines)
    assert rows.terms_now is not None and rows.licences is not None
    ledgers = Ledgers(session, facts, now, rows.terms_now)
    for row, line_decision in zip(lines, decision.lines, strict=True):
        posting = Posting(
            rule=Rule.NEW_LICENCES,  # each entry names its own rule (`_with`)
            explanation="",
            effective_at=data.placed_at,
            terms_version=rows.terms_version,
            order_id=data.order_id,
            order_line_id=row,  # its id once written
            licence_id=row.licence_id,
        )
        if line_decision.licence is not None:
            _change_licence(session, facts, rows.licences, line_decision.licence, customer, row)
        for credit in line_decision.points:
            ledger = await ledgers.of(credit.partner_id)
            await ledger.points(
                credit.credit.amount,
                _with(posting, credit.credit.rule, credit.credit.explanation),
                level_change=credit.level_change,
            )
        if line_decision.discount_mismatch:
            assert line_decision.expected_discount is not None
            assert buyer_id is not None
            await _write_discount_mismatch(session, facts, row, buyer_id, line_decision.expected_discount, now)
        commission = line_decision.commission
        if commission is not None:
            assert decision.credited_to is not None
            await (await ledgers.of(decision.credited_to)).money(
                commission.amount,
                data.currency,
                _with(posting, commission.rule, commission.explanation),
                rate_bp=commission.rate_bp,
                base=commission.base,
            )
    ledgers.settle()
    return order


def _write_customer(
    facts: Facts, data: OrderPaidData, check: IdentifierCheck, rows: _Gathered, now: datetime
) -> Customer:
    """The order's customer, created, or given the identifiers it lacked (R05): written with the
    batch's other records, where an identifier taken meanwhile by another transaction is `Contended`."""
    if rows.customer is None:
        created = Customer(company=data.customer.company, country=data.customer.country, created_at=now)
        facts.add_customer(created, check.identifiers)
        return created
    held = {(kind, value) for _, kind, value in rows.matches or []}
    facts.add_identifiers(rows.customer, [i for i in check.identifiers if (i.kind, i.value) not in held])
    return rows.customer


def _change_licence(
    session: AsyncSession,
    facts: Facts,
    licences: dict[str, Licence],
    change: decisions.LicenceChange,
    customer: Customer,
    row: repo.NewLine,
) -> None:
    """R09, R10: a licence sold, added to (an up-sell), or renewed."""
    if change.kind == "create":
        licence = Licence(
            licence_id=change.licence_id,
            partner_id=change.partner_id,
            customer_id=customer.id,
            sku=row.sku,
            quantity=change.quantity,
            points_per_unit=change.points_per_unit,
            term_end=change.term_end,
            status="active",
            order_line_id=0,  # the line's id, set when the line is written (`Writes.write_records`)
        )
        licences[change.licence_id] = licence
        facts.sell(licence, row)  # its line's id once written
        return
    licence = licences[change.licence_id]
    if change.kind == "add":
        licence.quantity += change.quantity
    else:  # renew: active again, for the quantity renewed
        licence.status = "active"
        licence.lapse_entry_id = None
        licence.quantity = change.quantity
    _extend_term(licence, change.term_end)


def _with(posting: Posting, rule: Rule, explanation: str) -> Posting:
    return replace(posting, rule=rule, explanation=explanation)


async def _write_discount_mismatch(
    session: AsyncSession,
    facts: Facts,
    row: repo.NewLine,
    partner_id: uuid.UUID,
    expected: crediting.ExpectedDiscount,
    now: datetime,
) -> None:
    """R12: the decision found the store applied another discount than the expected one: kept for
    review and flagged, never corrected."""
    if row.id is None:
        await facts.writes.write_records(session)  # the review names the line
    assert row.id is not None
    session.add(
        DiscountMismatch(
            order_id=row.order_id,
            order_line_id=row.id,
            partner_id=partner_id,
            expected_rate_bp=expected.rate_bp,
            expected_amount=expected.amount,
            reported_amount=row.discount_amount,
            reason=expected.why[:200],
            recorded_at=now,
        )
    )
    order_flags.flag(
        session,
        kind="discount_mismatch",
        order_id=row.order_id,
        order_line_id=row.id,
        partner_id=partner_id,
        detail=f"line {row.line_id}: expected a discount of {expected.amount} ({expected.rate_bp / 100:g} %, "
        f"{expected.why}), the store applied {row.discount_amount}",
        now=now,
    )


def _extend_term(licence: Licence, term_end: datetime | None) -> None:
    """A later term end moves the licence's; an earlier one never shortens it."""
    if term_end and (licence.term_end is None or term_end > licence.term_end):
        licence.term_end = term_end


async def gather_refund(
    session: AsyncSession, facts: Facts, data: OrderRefundedData, now: datetime
) -> tuple[decisions.RefundFacts, Order | None, dict[str, OrderLine]]:
    """Read what R14 asks about a refund (`decisions.RefundFacts`), through the batch's facts, with the
    order and its refunded lines (locked), stopping where the rules refuse it."""
    order = await facts.refunded_order(session, data.order_id)
    if order is None:
        return decisions.RefundFacts(order_received=False), None, {}
    rows = await facts.refund_lines(session, data.order_id, [line.line_id for line in data.lines])
    lines = {
        row.line_id: decisions.RefundLineFact(
            id=row.id,
            line_id=row.line_id,
            quantity=row.quantity,
            paid=row.paid_amount,
            refunded=row.refunded_amount,
            licence_id=row.licence_id,
        )
        for row in rows.values()
        if row.id is not None
    }
    known = decisions.RefundFacts(order_received=True, lines=lines)
    if decisions.refusal_of_refund(data, known) is not None:
        return known, order, rows
    earnings = await facts.line_earnings(session, [fact.id for fact in lines.values()])
    for line_id, fact in lines.items():
        earned = earnings[fact.id]
        money = points = None
        if earned.money_partner is not None:
            partner_id, currency = earned.money_partner
            money = decisions.EarnedMoney(partner_id, currency, earned.money_earned, earned.money_reversed)
        if earned.points_partner is not None:
            points = decisions.EarnedPoints(earned.points_partner, earned.points_credited, earned.points_reversed)
        lines[line_id] = replace(fact, money=money, points=points)
    known = replace(known, lines=lines)
    needed = decisions.licences_needing_standing_for_refund(data, known)
    standing = {licence_id: await facts.points_for_licence(session, licence_id) for licence_id in needed}
    for line_id, fact in lines.items():
        if fact.licence_id in standing:
            lines[line_id] = replace(fact, standing=standing[fact.licence_id])
    credited = [fact.points.partner_id for fact in lines.values() if fact.points is not None]
    return (
        replace(
            known,
            lines=lines,
            terms_now=(await facts.terms_in_force(session, now)).terms,
            balances=await facts.balance_facts(session, credited, now),
        ),
        order,
        rows,
    )


async def apply_refund(session: AsyncSession, facts: Facts, data: OrderRefundedData, *, now: datetime) -> Refund:
    """R14: reverse commission and points of refunded lines, on the running total of refunds: the
    refund's facts gathered, decided (`decisions.decide_refund`), written. Raises `Park` or
    `AlreadyRecorded` before writing anything."""
    await facts.lock_order(session, data.order_id)
    if await facts.refund(session, data.refund_id) is not None:
        raise AlreadyRecorded(data.refund_id)
    known, order, rows = await gather_refund(session, facts, data, now)
    decision = decisions.decide_refund(data, known)
    if isinstance(decision, decisions.Refusal):
        raise Park(decision.code, decision.detail, waiting_for=decision.waiting_for)
    assert order is not None
    refund = Refund(
        refund_id=data.refund_id,
        order_id=data.order_id,
        refunded_at=data.refunded_at,
        content_hash=content_hash(data),
        recorded_at=now,
    )
    facts.record_refund(refund)  # written with the batch's records (`Contended` if recorded meanwhile)
    assert known.terms_now is not None
    ledgers = Ledgers(session, facts, now, known.terms_now)
    for line in decision.lines:
        rows[line.line.line_id].refunded_amount = line.refunded
        posting = Posting(
            rule=Rule.REFUND,
            explanation="",
            effective_at=data.refunded_at,
            terms_version=order.terms_version,
            order_id=order.order_id,
            order_line_id=line.line.id,
            licence_id=line.line.licence_id,
        )
        if line.money is not None:
            partner_id, currency, money = line.money
            await (await ledgers.of(partner_id)).money(
                money.amount, currency, _with(posting, money.rule, money.explanation)
            )
        if line.points is not None:
            points = line.points.credit
            await (await ledgers.of(line.points.partner_id)).points(
                points.amount, _with(posting, points.rule, points.explanation), level_change=line.points.level_change
            )
    ledgers.settle()
    return refund


async def gather_lapse(
    session: AsyncSession, facts: Facts, licence_id: str, lapsed_at: datetime | None, now: datetime
) -> tuple[decisions.LapseFacts, Licence | None]:
    """Read what R10 asks about a lapse (`decisions.LapseFacts`), through the batch's facts, with the
    licence (locked), stopping where the rules settle it: unknown, lapsed before, renewed past the
    lapse, or not due yet."""
    licence = await facts.licence(session, licence_id)
    if licence is None:
        return decisions.LapseFacts(licence=None), None
    fact = _licence_fact(licence)
    known = decisions.LapseFacts(licence=fact)
    if fact.status == "lapsed":
        return known, licence
    if lapsed_at is not None and decisions.may_be_stale(fact, lapsed_at):
        known = replace(known, renewed_past=await facts.renewed_past(session, licence_id, lapsed_at))
        if known.renewed_past:
            return known, licence
    term_end = decisions.lapse_term_end(fact, lapsed_at, now)
    known = replace(known, grace_days=(await facts.terms_in_force(session, term_end)).terms.lapse_grace_days)
    if term_end + timedelta(days=known.grace_days) > now or fact.partner_id is None:
        return known, licence
    # Due: the points standing for it, and its partner's balance (the licence is locked first).
    return replace(
        known,
        standing_points=await facts.points_for_licence(session, licence_id),
        terms_now=(await facts.terms_in_force(session, now)).terms,
        balance=await facts.balance_fact(session, fact.partner_id, now),
    ), licence


async def apply_lapse(
    session: AsyncSession, facts: Facts, licence_id: str, lapsed_at: datetime | None, *, now: datetime
) -> str:
    """R10: revoke the points still standing for a licence that was not renewed: the lapse's facts
    gathered, decided (`decisions.decide_lapse`), written. Raises `Park` before writing anything."""
    known, licence = await gather_lapse(session, facts, licence_id, lapsed_at, now)
    decision = decisions.decide_lapse(licence_id, licence.sku if licence else "", lapsed_at, now, known)
    if isinstance(decision, decisions.Refusal):
        raise Park(decision.code, decision.detail, waiting_for=decision.waiting_for)
    if decision.outcome != "lapsed":
        return decision.outcome
    assert licence is not None and decision.effective_at is not None
    if facts.writes.unwritten(licence):  # sold by this batch: its line's id once written
        await facts.writes.write_records(session)
    licence.status = "lapsed"
    if decision.credit is not None:
        assert licence.partner_id is not None
        in_force, current = await facts.terms_then_and_now(session, decision.effective_at, now)
        ledger = await Ledger.open(session, facts, licence.partner_id, now, current.terms)
        await ledger.points(
            decision.credit.amount,
            Posting(
                rule=decision.credit.rule,
                effective_at=decision.effective_at,
                terms_version=in_force.version,
                explanation=decision.credit.explanation,
                order_line_id=licence.order_line_id,
                licence_id=licence_id,
            ),
            level_change=decision.level_change,
            named_by=[facts.lapse(licence, decision.credit.amount)],  # the licence names the entry that lapsed it
        )
    return "lapsed"


@dataclass(frozen=True)
class SoldLicence:
    licence: Licence
    order_id: str


async def licences(
    session: AsyncSession,
    *,
    without_term_end: bool | None,
    status: str | None,
    partner_id: uuid.UUID | None,
    before_line_id: int | None,
    limit: int,
) -> list[SoldLicence]:
    """Licences, the newest sale first. R23: those without a term end (sold before the store had to
    give one) never lapse by themselves (R10): their points stand until the store reports a lapse."""
    rows = await repo.licences(
        session,
        without_term_end=without_term_end,
        status=status,
        partner_id=partner_id,
        before_line_id=before_line_id,
        limit=limit,
    )
    return [SoldLicence(licence, order_id) for licence, order_id in rows]


async def sweep_lapses(session: AsyncSession, *, now: datetime, batch: int = 500) -> int:
    """R10 without a lapse event: lapse every licence overdue past its grace period.

    Safe from several machines at once: each skips the licences another one holds.
    """
    lapsed = 0
    overdue = await repo.overdue_licence_ids(session, now, batch)
    facts = await Facts.gather(session, [], lapses=[batch_repo.LapseReads(i, None) for i in overdue])
    for licence_id in overdue:
        try:  # a park is raised before anything is written
            if await apply_lapse(session, facts, licence_id, None, now=now) == "lapsed":
                lapsed += 1
        except Park:
            continue  # still within its grace period
    await facts.writes.write(session)
    await session.flush()
    return lapsed
