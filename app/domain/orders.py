"""What an order, a refund and a lapse do to a partner's ledgers (R03a, R04, R08-R15).

Every function here runs inside the caller's transaction and raises `Park` when the event cannot
be applied yet; the webhook use case then rolls back the savepoint and parks the event.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import batch as batch_repo
from app.db.repositories import customers as customers_repo
from app.db.repositories import ledgers as ledgers_repo
from app.db.repositories import memo
from app.db.repositories import orders as repo
from app.db.repositories import partners as partners_repo
from app.db.tables import (
    Customer,
    DiscountMismatch,
    Licence,
    Order,
    OrderLine,
    Partner,
    Refund,
    Registration,
    Relationship,
)
from app.domain import customers, directory, order_flags, partners, registrations, terms
from app.domain.errors import NotFound
from app.domain.identifiers import own_identifiers
from app.domain.ledger import Ledger, Posting
from app.domain.rules.identifiers import Identifier, IdentifierCheck, strong_identifiers
from app.domain.rules.money import (
    add_months_clamped,
    commission,
    refund_commission_target,
    refund_licences_target,
)
from app.domain.rules.names import LedgerKind, Rule
from app.domain.rules.terms import LEVEL_ORDER, Level, Terms
from app.domain.store_events import OrderPaidData, OrderRefundedData, content_hash

FUTURE_SKEW = timedelta(minutes=5)
"""How far in the future of our clock an order may be placed before it is parked."""


class Park(Exception):
    """The event cannot be applied (yet): kept with this reason until an admin or its cause replays it."""

    def __init__(self, code: str, detail: str, *, waiting_for: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.waiting_for = waiting_for


class AlreadyRecorded(Exception):
    """The order or refund was recorded before (perhaps by a concurrent delivery)."""


@dataclass
class Attribution:
    partner_id: uuid.UUID | None
    mode: str | None
    outcome: str
    relationship: Relationship | None = None
    conflict: list[tuple[Registration, Relationship]] | None = None
    """R08: registrations that would have made the order theirs, had the customer's relationship not
    been established since (`relationship_conflict`)."""


class Ledgers:
    """The ledgers an event touches, each partner's balance locked once."""

    def __init__(self, session: AsyncSession, now: datetime, terms_now: Terms) -> None:
        self.session, self.now, self.terms_now = session, now, terms_now
        self._open: dict[uuid.UUID, Ledger] = {}

    async def of(self, partner_id: uuid.UUID, *, level_at: datetime | None = None) -> Ledger:
        if partner_id not in self._open:
            self._open[partner_id] = await Ledger.open(
                self.session, partner_id, self.now, self.terms_now, level_at=level_at
            )
        return self._open[partner_id]

    async def settle(self) -> None:
        """Write every ledger's money totals: call once the event's entries are all made."""
        for ledger in self._open.values():
            await ledger.settle()


async def _relationship_at(session: AsyncSession, customer: Customer, at: datetime) -> Relationship | None:
    """The customer's relationship in force at `at`, or None (see `_in_force`)."""
    return await _in_force(session, await customers_repo.relationship_for(session, customer.id), customer, at)


async def _in_force(
    session: AsyncSession, relationship: Relationship | None, customer: Customer, at: datetime
) -> Relationship | None:
    """The customer's relationship if it is in force at `at`, or None.

    Not once a termination ended it. An order placed before the relationship's first order (it
    arrived late) is covered only when it was placed within the registration that established
    the relationship; one placed before that registration is not (R07, E3).
    """
    if relationship is None or (relationship.ended_at is not None and relationship.ended_at <= at):
        return None
    if at >= relationship.first_order_at:
        return relationship
    covering = await customers_repo.registrations_covering(
        session, customer.id, at, states=("live", "expired", "converted")
    )
    return relationship if any(r.partner_id == relationship.partner_id for r in covering) else None


def _qualifies(registration: Registration, customer: Customer) -> bool:
    """R07/E3: the registration was made before the order, and before any earlier purchase."""
    first = customer.first_purchase_at
    return first is None or first > registration.registered_at


async def resale_customer_status(
    session: AsyncSession, partner_id: uuid.UUID, customer: Customer | None, at: datetime
) -> tuple[str | None, Registration | None, Relationship | None]:
    """R08/R12: is the end customer this partner's registered or established customer at `at`?

    Returns (reason it is not, or None; the qualifying registration; the usable relationship).
    """
    if customer is None:
        return "customer_not_registered", None, None
    relationship = await _relationship_at(session, customer, at)
    if relationship is not None:
        if relationship.partner_id == partner_id:
            return None, None, relationship
        return "customer_of_another_partner", None, relationship
    for registration in await customers_repo.registrations_covering(session, customer.id, at):
        if registration.partner_id == partner_id and _qualifies(registration, customer):
            return None, registration, None
    return "customer_not_registered", None, None


def _establish(
    session: AsyncSession, registration: Registration, customer: Customer, order: OrderPaidData, mode: str
) -> Relationship:
    relationship = Relationship(
        partner_id=registration.partner_id,
        customer_id=customer.id,
        mode=mode,
        first_order_at=order.placed_at,
        established_by_order_id=order.order_id,
        resale_since=order.placed_at if mode == "resale" else None,
    )
    session.add(relationship)
    memo.forget_relationship(session, customer.id)
    registration.state = "converted"
    registration.ended_at = order.placed_at
    registration.converted_order_id = order.order_id
    registrations.record_ended(session, registration)
    return relationship


async def _attribute(
    session: AsyncSession, order: OrderPaidData, customer: Customer, buyer_partner_id: uuid.UUID | None
) -> Attribution:
    """R08: who, if anyone, this order belongs to.

    A customer has one relationship. An order that arrives late, placed within a registration of a
    partner after which another relationship was established (or one that has ended), leaves that
    relationship as it is: the order earns nothing and is flagged `relationship_conflict`."""
    at = order.placed_at
    if buyer_partner_id is not None:
        reason, registration, relationship = await resale_customer_status(session, buyer_partner_id, customer, at)
        if reason is not None:
            return Attribution(None, None, reason)
        if relationship is not None:
            if relationship.mode == "referral":  # referral becomes resale, never the other way
                relationship.mode = "resale"
                relationship.resale_since = at
            return Attribution(buyer_partner_id, "resale", "credited", relationship)
        assert registration is not None
        if (existing := await customers_repo.relationship_for(session, customer.id)) is not None:
            return Attribution(None, None, "relationship_conflict", conflict=[(registration, existing)])
        return Attribution(
            buyer_partner_id, "resale", "credited", _establish(session, registration, customer, order, "resale")
        )
    existing = await customers_repo.relationship_for(session, customer.id)
    relationship = await _in_force(session, existing, customer, at)
    if relationship is not None:
        return Attribution(relationship.partner_id, relationship.mode, "credited", relationship)
    covering = [
        r for r in await customers_repo.registrations_covering(session, customer.id, at) if _qualifies(r, customer)
    ]
    if covering and existing is not None:
        return Attribution(
            None,
            None,
            "relationship_conflict",
            conflict=[(r, existing) for r in sorted(covering, key=lambda r: (r.registered_at, str(r.partner_id)))],
        )
    partners_found = {r.partner_id for r in covering}
    if len(partners_found) > 1:
        raise Park(
            "registration_conflict",
            "The order's customer matches live registrations of several partners; an admin must decide.",
        )
    if not covering:
        return Attribution(None, None, "no_match")
    return Attribution(
        covering[0].partner_id, "referral", "credited", _establish(session, covering[0], customer, order, "referral")
    )


async def _own_company(
    session: AsyncSession, buyer: Partner | None, attributed: uuid.UUID | None, identifiers: Sequence[Identifier]
) -> tuple[uuid.UUID, str] | None:
    """R22: the buying or attributed partner whose own company the end customer is, and what matched."""
    candidates = [buyer] if buyer is not None else []
    if (
        attributed is not None
        and (buyer is None or attributed != buyer.id)
        # Usually read already, with the relationship that attributed the order: no round trip.
        and (partner := await partners_repo.known(session, attributed)) is not None
    ):
        candidates.append(partner)
    for partner in candidates:
        matched = (await own_identifiers(session, partner)).matches(identifiers)
        if matched is not None:
            return partner.id, matched
    return None


async def _claim_order(session: AsyncSession, order: Order) -> Order:
    if not await repo.insert_order(session, order):
        raise AlreadyRecorded(order.order_id)
    return order


def _buyer_partner_id(data: OrderPaidData) -> uuid.UUID | None:
    if data.buyer.type != "partner":
        return None
    try:
        return uuid.UUID(data.buyer.partner_id or "")
    except ValueError:
        return None


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
    )


async def apply_order(session: AsyncSession, data: OrderPaidData, *, now: datetime, event_id: int | None) -> Order:
    """Record an order and credit what it earns."""
    await repo.lock_order_id(session, data.order_id)
    if data.placed_at > now + FUTURE_SKEW:
        raise Park(
            "placed_in_future",
            f"placed_at {data.placed_at.isoformat()} lies in the future of this service's clock "
            f"({now.isoformat()}); replay it once that moment has passed.",
        )
    try:
        in_force, current = await terms.in_force_then_and_now(session, data.placed_at, now)
    except NotFound as exc:
        raise Park("no_terms", exc.detail) from exc
    program = in_force.terms
    unknown = sorted({line.sku for line in data.lines} - set(program.points_per_sku))
    if unknown:
        raise Park(
            "unknown_sku",
            f"SKU {', '.join(unknown)} is not in the program terms (version {in_force.version}); add it, "
            "then replay this event.",
        )
    buyer_partner_id = _buyer_partner_id(data)
    buyer: Partner | None = None
    if data.buyer.type == "partner":
        buyer = await partners_repo.known(session, buyer_partner_id) if buyer_partner_id is not None else None
        if buyer is None:
            raise Park("unknown_partner", f"The buying partner {data.buyer.partner_id!r} is not known.")
    check = _identifiers(data)
    try:
        customer = await customers.resolve(
            session,
            company=data.customer.company,
            country=data.customer.country,
            identifiers=check.identifiers,
            now=now,
        )
    except customers.AmbiguousCustomer as exc:
        raise Park("ambiguous_customer", exc.detail) from exc

    attribution = await _attribute(session, data, customer, buyer_partner_id)
    for registration, relationship in attribution.conflict or []:  # R08: the relationship stands; flagged
        order_flags.flag(
            session,
            kind="relationship_conflict",
            order_id=data.order_id,
            order_line_id=None,
            partner_id=registration.partner_id,
            detail=f"placed {data.placed_at.isoformat()} within this partner's registration of the customer "
            f"(until {registration.expires_at.isoformat()}), but the customer's relationship is partner "
            f"{relationship.partner_id}'s (first order {relationship.first_order_at.isoformat()}): it stands and "
            "the order earns nothing; an adjustment may make up for it",
            now=now,
        )
    if customer.first_purchase_at is None or data.placed_at < customer.first_purchase_at:
        customer.first_purchase_at = data.placed_at  # R08: now an existing customer, whoever sold it

    ledgers = Ledgers(session, now, current.terms)
    credited: Ledger | None = None
    level: Level | None = None
    if attribution.partner_id is not None:
        standing = await partners.standing_at(session, attribution.partner_id, data.placed_at, known=True)
        credited = await ledgers.of(attribution.partner_id, level_at=data.placed_at)
        level = await credited.level_at(data.placed_at, program)  # R03a, fixed now and never re-rated
        if not standing.eligible:
            attribution.outcome = "partner_not_eligible"
            credited = None
    own = await _own_company(session, buyer, attribution.partner_id, check.identifiers)
    if own is not None:  # R22: a partner's own company is never its customer: nothing earned, flagged
        own_partner, matched = own
        order_flags.flag(
            session,
            kind="own_company",
            order_id=data.order_id,
            order_line_id=None,
            partner_id=own_partner,
            detail=f"the end customer is the partner's own company ({matched})",
            now=now,
        )
        attribution.outcome = "own_company"
        credited = None
    nfr = await directory.nfr_in(session, [line.licence_id for line in data.lines])
    if nfr:  # R17: an order that tries to sell a not-for-resale licence earns nothing and is flagged
        directory.flag_nfr(session, nfr, source="order", order_id=data.order_id, now=now)
        attribution.outcome = "nfr_licence_sold"
        credited = None
    # Recorded once everything about it is known: one INSERT, no UPDATE. The order id's lock (taken
    # above) makes a concurrent delivery of the same order wait; a recorded one is AlreadyRecorded.
    order = await _claim_order(
        session,
        Order(
            order_id=data.order_id,
            placed_at=data.placed_at,
            currency=data.currency,
            buyer_partner_id=buyer_partner_id,
            customer_id=customer.id,
            content_hash=content_hash(data),
            terms_version=in_force.version,
            partner_id=attribution.partner_id,
            mode=attribution.mode,
            level=level.value if level else None,
            outcome=attribution.outcome,
            webhook_event_id=event_id,
            recorded_at=now,
        ),
    )

    rel = attribution.relationship
    rows = [
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
    await repo.insert_lines(session, rows)  # their ids are needed by the entries
    # Every licence the order names, locked in one read; lines that create one add it here.
    licences = await repo.licences_for_update(session, [line.licence_id for line in data.lines if line.licence_id])
    seen_licences: set[str] = set()
    for line, row in zip(data.lines, rows, strict=True):
        assert row.id is not None
        if line.licence_id in seen_licences:
            await session.flush()  # an earlier line of this order wrote this licence: read it back
        if line.licence_id:
            seen_licences.add(line.licence_id)
        posting = Posting(
            rule=Rule.NEW_LICENCES,  # each line's entries name their own rule (`_with`)
            explanation="",
            effective_at=data.placed_at,
            terms_version=in_force.version,
            order_id=data.order_id,
            order_line_id=row.id,
            licence_id=line.licence_id,
        )
        if line.kind == "new":
            await _new_licence(session, row, line.sku, customer, credited, program, posting, licences)
        else:
            await _renewal(session, row, ledgers, data.placed_at, posting, licences)
        if credited is None or level is None or rel is None:
            if buyer_partner_id is not None:
                _check_discount(session, row, buyer_partner_id, 0, "no discount applies: " + attribution.outcome, now)
            continue
        net = line.paid_amount - line.tax_amount  # R23: commission never on the tax
        if buyer_partner_id is not None:  # R12: the partner bought at its discount
            _check_discount(session, row, buyer_partner_id, program.resale_rate_bp(level), f"level {level.value}", now)
        elif rel.mode == "referral":  # R11
            window_end = add_months_clamped(rel.first_order_at.astimezone(program.zone), program.referral_window_months)
            if data.placed_at < window_end:
                await credited.money(
                    commission(net, program.referral_rate_bp),
                    data.currency,
                    _with(
                        posting,
                        Rule.REFERRAL_COMMISSION,
                        f"referral commission {program.referral_rate_bp / 100:g} % of "
                        f"{net} paid net of tax for {line.quantity} x {line.sku} (window until "
                        f"{window_end.date().isoformat()})",
                    ),
                    rate_bp=program.referral_rate_bp,
                    base=net,
                )
        elif LEVEL_ORDER.index(level) >= LEVEL_ORDER.index(Level.SILVER):  # R13
            rate = program.rate_bp(level)
            await credited.money(
                commission(net, rate),
                data.currency,
                _with(
                    posting,
                    Rule.LIFETIME_COMMISSION,
                    f"lifetime commission {rate / 100:g} % ({level.value}) of "
                    f"{net} paid net of tax directly for {line.quantity} x {line.sku}",
                ),
                rate_bp=rate,
                base=net,
            )
    await ledgers.settle()
    if memo.of(session) is None:  # a batch's objects are written together when it ends
        await session.flush()
    return order


def _with(posting: Posting, rule: Rule, explanation: str) -> Posting:
    return Posting(
        rule=rule,
        explanation=explanation,
        effective_at=posting.effective_at,
        terms_version=posting.terms_version,
        order_id=posting.order_id,
        order_line_id=posting.order_line_id,
        licence_id=posting.licence_id,
    )


def _check_discount(
    session: AsyncSession, row: repo.NewLine, partner_id: uuid.UUID, rate_bp: int, why: str, now: datetime
) -> None:
    """R12: a discount other than the expected one is kept for review, never corrected."""
    expected = commission(row.list_amount, rate_bp)
    if row.discount_amount != expected:
        assert row.id is not None
        session.add(
            DiscountMismatch(
                order_id=row.order_id,
                order_line_id=row.id,
                partner_id=partner_id,
                expected_rate_bp=rate_bp,
                expected_amount=expected,
                reported_amount=row.discount_amount,
                reason=why[:200],
                recorded_at=now,
            )
        )
        order_flags.flag(
            session,
            kind="discount_mismatch",
            order_id=row.order_id,
            order_line_id=row.id,
            partner_id=partner_id,
            detail=f"line {row.line_id}: expected a discount of {expected} ({rate_bp / 100:g} %, {why}), "
            f"the store applied {row.discount_amount}",
            now=now,
        )


async def _new_licence(
    session: AsyncSession,
    row: repo.NewLine,
    sku: str,
    customer: Customer,
    credited: Ledger | None,
    program: Terms,
    posting: Posting,
    licences: dict[str, Licence],
) -> None:
    """R09: new licences earn quantity x points, with no time limit, in an established relationship."""
    per_unit = program.points_per_sku[sku]
    assert row.id is not None
    if row.licence_id:
        licence = licences.get(row.licence_id)
        if licence is None:
            licences[row.licence_id] = Licence(
                licence_id=row.licence_id,
                partner_id=credited.partner_id if credited else None,
                customer_id=customer.id,
                sku=sku,
                quantity=row.quantity,
                points_per_unit=per_unit,
                term_end=row.term_end,
                status="active",
                order_line_id=row.id,
            )
            session.add(licences[row.licence_id])
            memo.forget_licence(session, row.licence_id)
        else:  # an up-sell of extra licences on the same subscription
            licence.quantity += row.quantity
            _extend_term(licence, row.term_end)
    if credited is not None:
        await credited.points(
            row.quantity * per_unit,
            _with(posting, Rule.NEW_LICENCES, f"{row.quantity} x {sku} new licence(s) at {per_unit} point(s) each"),
        )


def _extend_term(licence: Licence, term_end: datetime | None) -> None:
    """A later term end moves the licence's; an earlier one never shortens it."""
    if term_end and (licence.term_end is None or term_end > licence.term_end):
        licence.term_end = term_end


async def _renewal(
    session: AsyncSession,
    row: repo.NewLine,
    ledgers: Ledgers,
    at: datetime,
    posting: Posting,
    licences: dict[str, Licence],
) -> None:
    """R10: a renewal extends its licence, lapses licences not renewed, and reinstates a lapsed one."""
    if not row.licence_id:
        return
    licence = licences.get(row.licence_id)
    if licence is None:
        return
    if licence.partner_id is not None:
        ledger = await ledgers.of(licence.partner_id)
        if licence.status == "lapsed" and licence.lapse_entry_id is not None:
            revoked = await ledgers_repo.get_points_entry(session, licence.lapse_entry_id)
            if revoked is not None and revoked.points < 0:
                standing = await partners.standing_at(session, licence.partner_id, at, known=True)
                # Only the licences renewed come back; the others stay lapsed.
                restored = min(-revoked.points, row.quantity * licence.points_per_unit)
                if standing.eligible and restored > 0:
                    await ledger.points(
                        restored,
                        _with(
                            posting,
                            Rule.LAPSE_AND_RENEWAL,
                            f"licence {licence.licence_id} renewed after its lapse: "
                            f"restores {restored} of the {-revoked.points} point(s) the lapse revoked",
                        ),
                    )
        elif row.quantity < licence.quantity:
            standing_points = await ledgers_repo.points_for_licence(session, licence.licence_id)
            lost = min(standing_points, (licence.quantity - row.quantity) * licence.points_per_unit)
            if lost > 0:
                await ledger.points(
                    -lost,
                    _with(
                        posting,
                        Rule.LAPSE_AND_RENEWAL,
                        f"licence {licence.licence_id} renewed for {row.quantity} of "
                        f"{licence.quantity}: the {licence.quantity - row.quantity} not renewed lapse",
                    ),
                )
    licence.status = "active"
    licence.lapse_entry_id = None
    licence.quantity = row.quantity
    _extend_term(licence, row.term_end)


async def apply_refund(session: AsyncSession, data: OrderRefundedData, *, now: datetime) -> Refund:
    """R14: reverse commission and points of refunded lines, on the running total of refunds."""
    await repo.lock_order_id(session, data.order_id)
    order = await repo.get_order(session, data.order_id)
    if order is None:
        raise Park(
            "order_not_received",
            f"Order {data.order_id} has not arrived yet; the refund applies by itself when it does.",
            waiting_for=f"order:{data.order_id}",
        )
    lines: list[tuple[OrderLine, int]] = []
    for refund_line in data.lines:
        row = await repo.line(session, data.order_id, refund_line.line_id, for_update=True)
        if row is None:
            raise Park("unknown_order_line", f"Order {data.order_id} has no line {refund_line.line_id!r}.")
        total = row.refunded_amount + refund_line.amount
        if total > row.paid_amount:
            raise Park(
                "refund_exceeds_paid",
                f"Refunds of line {row.line_id} would total {total}, more than the {row.paid_amount} paid.",
            )
        lines.append((row, refund_line.amount))
    refund = Refund(
        refund_id=data.refund_id,
        order_id=data.order_id,
        refunded_at=data.refunded_at,
        content_hash=content_hash(data),
        recorded_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(refund)
    except IntegrityError as exc:
        raise AlreadyRecorded(data.refund_id) from exc
    ledgers = Ledgers(session, now, (await terms.in_force(session, now)).terms)
    for row, amount in lines:
        assert row.id is not None
        await session.flush()  # the sums below read the entries of the lines before (points wait for a flush)
        row.refunded_amount += amount
        posting = Posting(
            rule=Rule.REFUND,
            explanation="",
            effective_at=data.refunded_at,
            terms_version=order.terms_version,
            order_id=order.order_id,
            order_line_id=row.id,
            licence_id=row.licence_id,
        )
        earned = await ledgers_repo.money_partner_for_line(session, row.id)
        if earned is not None:
            partner_id, currency = earned
            earned_total = await ledgers_repo.money_for_line(
                session, row.id, Rule.refunded(LedgerKind.MONEY), credits_only=True
            )
            reversed_so_far = -await ledgers_repo.money_for_line(session, row.id, [Rule.REFUND])
            target = refund_commission_target(earned_total, row.refunded_amount, row.paid_amount)
            if target != reversed_so_far:
                await (await ledgers.of(partner_id)).money(
                    -(target - reversed_so_far),
                    currency,
                    _with(
                        posting,
                        Rule.REFUND,
                        f"refund {data.refund_id}: {row.refunded_amount} of {row.paid_amount} "
                        f"refunded reverses {target} of the {earned_total} commission",
                    ),
                )
        points_partner = await ledgers_repo.points_partner_for_line(session, row.id)
        if points_partner is not None:
            # What the line credited: new licences (R09) or, for a renewal, the points it restored (R10).
            credited_points = await ledgers_repo.points_for_line(
                session, row.id, Rule.refunded(LedgerKind.POINTS), credits_only=True
            )
            reversed_points = -await ledgers_repo.points_for_line(session, row.id, [Rule.REFUND])
            per_unit = credited_points // row.quantity if row.quantity else 0
            target_points = refund_licences_target(row.quantity, row.refunded_amount, row.paid_amount) * per_unit
            delta = target_points - reversed_points
            if row.licence_id and delta > 0:  # R10/R14: only what still stands (a lapse may have taken it)
                delta = min(delta, max(0, await ledgers_repo.points_for_licence(session, row.licence_id)))
            if delta > 0:
                await (await ledgers.of(points_partner)).points(
                    -delta,
                    _with(
                        posting,
                        Rule.REFUND,
                        f"refund {data.refund_id}: {target_points // per_unit if per_unit else 0} "
                        f"of {row.quantity} licence(s) refunded",
                    ),
                )
    await ledgers.settle()
    await session.flush()
    return refund


async def apply_lapse(session: AsyncSession, licence_id: str, lapsed_at: datetime | None, *, now: datetime) -> str:
    """R10: revoke the points still standing for a licence that was not renewed."""
    licence = await repo.licence(session, licence_id, for_update=True)
    if licence is None:
        raise Park(
            "unknown_licence", f"Licence {licence_id} is not known (its order has not arrived?).", waiting_for=None
        )
    if licence.status == "lapsed":
        return "already_lapsed"
    if (
        lapsed_at is not None
        and licence.term_end is not None
        and licence.term_end > lapsed_at
        and await repo.renewed_past(session, licence_id, lapsed_at)
    ):
        return "renewed_since"  # a stale lapse: a renewal moved the term end past that moment
    term_end = licence.term_end or lapsed_at or now
    grace = (await terms.in_force(session, term_end)).terms.lapse_grace_days
    effective = term_end + timedelta(days=grace)
    if effective > now:
        # Never applied early (R10): it applies by itself at `effective` (the due-lapses job), unless a
        # renewal of the licence arrives first.
        raise Park(
            "lapse_not_due",
            f"Licence {licence_id} lapses only at {effective.isoformat()} (its term end"
            + (f" plus {grace} day(s) of grace" if grace else "")
            + "); this lapse applies by itself then, unless the licence is renewed first.",
            waiting_for=f"licence:{licence_id}",
        )
    licence.status = "lapsed"
    if licence.partner_id is not None:
        standing = await ledgers_repo.points_for_licence(session, licence_id)
        if standing > 0:
            in_force, current = await terms.in_force_then_and_now(session, effective, now)
            ledger = await Ledger.open(session, licence.partner_id, now, current.terms)
            entry = await ledger.points(
                -standing,
                Posting(
                    rule=Rule.LAPSE_AND_RENEWAL,
                    effective_at=effective,
                    terms_version=in_force.version,
                    explanation=f"licence {licence_id} ({licence.quantity} x {licence.sku}) not renewed: "
                    f"its {standing} standing point(s) are revoked",
                    order_line_id=licence.order_line_id,
                    licence_id=licence_id,
                ),
                need_id=True,  # the licence names the entry that lapsed it
            )
            if entry is not None:
                licence.lapse_entry_id = entry.id
    await session.flush()
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
    for licence_id in await repo.overdue_licence_ids(session, now, batch):
        try:
            async with session.begin_nested():
                if await apply_lapse(session, licence_id, None, now=now) == "lapsed":
                    lapsed += 1
        except Park:
            continue  # still within its grace period
    return lapsed
