"""An order, decided: everything a store order does, as one value (R03a, R04, R08-R13, R17, R22, R23).

`decide_order` takes the order and the facts gathered about it (`OrderFacts`) and returns either a
`Refusal` (the order is parked, nothing written) or an `OrderDecision`: who it belongs to and what
that changes (a relationship established or turned to resale, conflicts flagged), its outcome and
level, what each line does to its licence, the points and commission each line earns, the points a
renewal restores or takes, the levels those points move (R03) and the discount a buying partner
should have had. `decide_refund` and `decide_lapse` do the same for a refund (R14) and a lapse (R10).
No session, no clock, no I/O: the applier (`app.domain.orders`) gathers the facts and writes the
decision.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.domain.rules import crediting
from app.domain.rules.terms import Level, Terms
from app.domain.store_events import OrderPaidData, OrderRefundedData

FUTURE_SKEW = timedelta(minutes=5)
"""How far in the future of our clock an order may be placed before it is parked."""


@dataclass(frozen=True)
class Refusal:
    """The event cannot be applied (yet): parked with this reason, nothing of it written."""

    code: str
    detail: str
    waiting_for: str | None = None


@dataclass(frozen=True)
class BalanceFact:
    """A partner's points and stored level before the event (R03)."""

    points: int
    level: Level


@dataclass(frozen=True)
class LevelMove:
    """R03: the level a points entry moves its partner to; the level history and the
    `partner.level_changed` event name that entry."""

    from_level: Level
    to_level: Level
    points_after: int


def level_move(balance: BalanceFact, points: int, terms_now: Terms) -> tuple[BalanceFact, LevelMove | None]:
    """The balance after `points` are credited (or taken) under the terms in force now, and the level
    move they make, if any. An entry of 0 points is never written and moves nothing."""
    if points == 0:
        return balance, None
    after = balance.points + points
    level = terms_now.level_for(after)
    move = LevelMove(balance.level, level, after) if level != balance.level else None
    return BalanceFact(after, level if move is not None else balance.level), move


class _Balances:
    """The partners' balances as the event's earlier entries left them; `None` when the caller did
    not ask about levels (a quote): no move is decided then."""

    def __init__(self, balances: Mapping[uuid.UUID, BalanceFact] | None, terms_now: Terms | None) -> None:
        self._balances = dict(balances) if balances is not None else None
        self._terms_now = terms_now

    def credit(self, partner_id: uuid.UUID, points: int) -> LevelMove | None:
        if self._balances is None:
            return None
        assert self._terms_now is not None, "levels are decided under the terms in force now"
        self._balances[partner_id], move = level_move(self._balances[partner_id], points, self._terms_now)
        return move


@dataclass(frozen=True)
class LicenceFact:
    """A licence an order names, as it stands before the order."""

    licence_id: str
    partner_id: uuid.UUID | None
    quantity: int
    points_per_unit: int
    term_end: datetime | None
    status: str
    revoked_by_lapse: int | None = None
    """Lapsed with an entry (R10): the points that entry took (0 when it took none); else None."""
    standing_points: int | None = None
    """The points standing for it, where a renewal for fewer licences needs them (else None)."""
    partner_eligible: bool | None = None
    """R04: its partner's standing at the order's moment, where a renewal after a lapse needs it."""


@dataclass(frozen=True)
class OrderFacts:
    """What the rules ask about an order, read before it is decided. A fact the rules do not reach
    (the order is refused before) is left at its default."""

    now: datetime
    terms_version: int | None = None
    terms: Terms | None = None
    """The terms in force when it was placed; None (with `no_terms`) when none were."""
    no_terms: str | None = None
    buyer_known: bool = True
    """A buying partner the service knows (always true for a customer buying directly)."""
    customers_matched: int = 0
    """How many customers the order's identifiers name."""
    customer: crediting.CustomerFacts = crediting.NEW_CUSTOMER
    eligible: bool | None = None
    """R04: the attributed partner could earn when the order was placed (None: no partner)."""
    points_before: int | None = None
    """R03a: the attributed partner's points effective before the order was placed."""
    own_company: tuple[uuid.UUID, str] | None = None
    """R22: the buying or attributed partner whose own company the customer is, and what matched."""
    nfr: tuple[str, ...] = ()
    """R17: the not-for-resale licences among the order's licence ids."""
    licences: Mapping[str, LicenceFact] = field(default_factory=dict)
    terms_now: Terms | None = None
    """The terms in force now, which give the levels points move to (R03)."""
    balances: Mapping[uuid.UUID, BalanceFact] | None = None
    """Every partner the order may credit points to (its attributed partner, the partners of the
    licences it renews), before it; None when levels are not asked about (a quote)."""


@dataclass(frozen=True)
class PointsCredit:
    partner_id: uuid.UUID
    credit: crediting.Credit
    level_change: LevelMove | None = None
    """R03: the level this entry moves its partner to."""


@dataclass(frozen=True)
class LicenceChange:
    """What a line does to its licence: `create` it, `add` to it (an up-sell), or `renew` it."""

    kind: str
    licence_id: str
    quantity: int
    term_end: datetime | None
    partner_id: uuid.UUID | None = None
    points_per_unit: int = 0


@dataclass(frozen=True)
class LineDecision:
    licence: LicenceChange | None = None
    points: tuple[PointsCredit, ...] = ()
    """R09 points of new licences, R10 points a renewal restores or takes, in the order made."""
    commission: crediting.Credit | None = None
    """R11/R13, to the partner the order is credited to."""
    expected_discount: crediting.ExpectedDiscount | None = None
    """R12: for a partner's purchase, the discount it should have had."""
    discount_mismatch: bool = False
    """R12: the store applied another discount than `expected_discount`: kept for review, flagged."""


@dataclass(frozen=True)
class OrderDecision:
    attribution: crediting.Attribution
    outcome: crediting.Outcome
    earns: bool
    level: Level | None
    """R03a: the credited partner's level when the order was placed (fixed, never re-rated)."""
    credited_to: uuid.UUID | None
    """The partner the order's lines earn for (None when it earns nothing)."""
    lines: tuple[LineDecision, ...]


def refusal_before_facts(data: OrderPaidData, now: datetime) -> Refusal | None:
    """What parks an order before any fact is read."""
    if data.placed_at > now + FUTURE_SKEW:
        return Refusal(
            "placed_in_future",
            f"placed_at {data.placed_at.isoformat()} lies in the future of this service's clock "
            f"({now.isoformat()}); replay it once that moment has passed.",
        )
    return None


def refusal_of_terms(
    data: OrderPaidData, version: int | None, terms: Terms | None, no_terms: str | None
) -> Refusal | None:
    """What parks an order for the terms it was placed under."""
    if terms is None:
        return Refusal("no_terms", no_terms or f"No program terms were in force at {data.placed_at.isoformat()}.")
    unknown = sorted({line.sku for line in data.lines} - set(terms.points_per_sku))
    if unknown:
        return Refusal(
            "unknown_sku",
            f"SKU {', '.join(unknown)} is not in the program terms (version {version}); add it, "
            "then replay this event.",
        )
    return None


def refusal_of_buyer(data: OrderPaidData, buyer_known: bool) -> Refusal | None:
    if data.buyer.type == "partner" and not buyer_known:
        return Refusal("unknown_partner", f"The buying partner {data.buyer.partner_id!r} is not known.")
    return None


AMBIGUOUS_CUSTOMER = "ambiguous_customer"
"""Park code: the order's identifiers match several customers; an admin must decide."""


def refusal_of_customer(customers_matched: int, attribution: crediting.Attribution | None) -> Refusal | None:
    if customers_matched > 1:
        return Refusal(
            AMBIGUOUS_CUSTOMER,
            "These identifiers belong to several customers the vendor knows apart; an admin must "
            "decide which one is meant.",
        )
    if attribution is not None and attribution.several_partners:
        return Refusal(
            "registration_conflict",
            "The order's customer matches live registrations of several partners; an admin must decide.",
        )
    return None


def buyer_partner_id(data: OrderPaidData) -> uuid.UUID | None:
    if data.buyer.type != "partner":
        return None
    try:
        return uuid.UUID(data.buyer.partner_id or "")
    except ValueError:
        return None


def decide_order(data: OrderPaidData, facts: OrderFacts) -> Refusal | OrderDecision:
    """What the order does, or why it is parked. An order recorded before is not decided again (the
    applier settles it as a repeat first)."""
    refusal = refusal_before_facts(data, facts.now) or refusal_of_terms(
        data, facts.terms_version, facts.terms, facts.no_terms
    )
    if refusal is not None:
        return refusal
    terms = facts.terms
    assert terms is not None
    buyer = buyer_partner_id(data)
    refusal = refusal_of_buyer(data, facts.buyer_known)
    if refusal is not None:
        return refusal
    attribution = crediting.attribute(at=data.placed_at, buyer_partner_id=buyer, customer=facts.customer)
    refusal = refusal_of_customer(facts.customers_matched, attribution)
    if refusal is not None:
        return refusal
    level = terms.level_for(facts.points_before) if facts.points_before is not None else None
    outcome, earns = crediting.outcome(
        attribution.outcome,
        eligible=facts.eligible if attribution.partner_id is not None else None,
        own_company=facts.own_company is not None,
        sells_nfr=bool(facts.nfr),
    )
    credited_to = attribution.partner_id if earns else None
    mode, first_order_at = _credited_through(attribution, data)
    return OrderDecision(
        attribution=attribution,
        outcome=outcome,
        earns=earns,
        level=level if attribution.partner_id is not None else None,
        credited_to=credited_to,
        lines=_lines(data, facts, terms, buyer, credited_to, level, outcome, earns, mode, first_order_at),
    )


def _credited_through(attribution: crediting.Attribution, data: OrderPaidData) -> tuple[str | None, datetime | None]:
    """The mode and first order of the relationship the order is credited through, once it took effect."""
    if attribution.establish is not None:
        return attribution.mode, data.placed_at
    relationship = attribution.relationship
    if relationship is None:
        return None, None
    return ("resale" if attribution.becomes_resale else relationship.mode), relationship.first_order_at


@dataclass
class _Licence:
    """A licence as the order's earlier lines left it."""

    partner_id: uuid.UUID | None
    quantity: int
    points_per_unit: int
    status: str
    revoked_by_lapse: int | None
    standing: int | None
    eligible: bool | None


def _lines(
    data: OrderPaidData,
    facts: OrderFacts,
    terms: Terms,
    buyer: uuid.UUID | None,
    credited_to: uuid.UUID | None,
    level: Level | None,
    outcome: crediting.Outcome,
    earns: bool,
    mode: str | None,
    first_order_at: datetime | None,
) -> tuple[LineDecision, ...]:
    licences = {
        i: _Licence(
            f.partner_id,
            f.quantity,
            f.points_per_unit,
            f.status,
            f.revoked_by_lapse,
            f.standing_points,
            f.partner_eligible,
        )
        for i, f in facts.licences.items()
    }
    balances = _Balances(facts.balances, facts.terms_now)
    decided: list[LineDecision] = []
    for line in data.lines:
        licence = licences.get(line.licence_id) if line.licence_id else None
        change: LicenceChange | None = None
        points: list[PointsCredit] = []
        if line.kind == "new":
            per_unit = terms.points_per_sku[line.sku]
            if line.licence_id:
                if licence is None:
                    change = LicenceChange(
                        "create", line.licence_id, line.quantity, line.term_end, credited_to, per_unit
                    )
                    licences[line.licence_id] = _Licence(credited_to, line.quantity, per_unit, "active", None, 0, None)
                else:  # an up-sell of extra licences on the same subscription
                    change = LicenceChange("add", line.licence_id, line.quantity, line.term_end)
                    licence.quantity += line.quantity
            if credited_to is not None:
                earned = crediting.new_licence_points(quantity=line.quantity, sku=line.sku, terms=terms)
                points.append(PointsCredit(credited_to, earned, balances.credit(credited_to, earned.amount)))
                _stand(licences, line.licence_id, earned.amount)
        elif line.licence_id and licence is not None:
            if licence.partner_id is not None:
                credit = crediting.renewal_points(
                    licence_id=line.licence_id,
                    licence_quantity=licence.quantity,
                    points_per_unit=licence.points_per_unit,
                    renewed_quantity=line.quantity,
                    revoked_by_lapse=licence.revoked_by_lapse if licence.status == "lapsed" else None,
                    standing_points=licence.standing if line.quantity < licence.quantity else None,
                    eligible=licence.eligible,
                )
                if credit is not None:
                    move = balances.credit(licence.partner_id, credit.amount)
                    points.append(PointsCredit(licence.partner_id, credit, move))
                    _stand(licences, line.licence_id, credit.amount)
            change = LicenceChange("renew", line.licence_id, line.quantity, line.term_end)
            licence.status, licence.revoked_by_lapse, licence.quantity = "active", None, line.quantity
        if buyer is not None:  # R12: the partner bought at its discount (or at none)
            expected = crediting.expected_discount(
                list_amount=line.list_amount, level=level, why_none=None if earns else outcome, terms=terms
            )
            mismatch = line.discount_amount != expected.amount
            decided.append(LineDecision(change, tuple(points), expected_discount=expected, discount_mismatch=mismatch))
            continue
        commission = None
        if credited_to is not None and level is not None and mode is not None and first_order_at is not None:
            commission = crediting.commission_of(  # R11, R13
                net=line.paid_amount - line.tax_amount,  # R23: commission never on the tax
                quantity=line.quantity,
                sku=line.sku,
                placed_at=data.placed_at,
                level=level,
                mode=mode,
                first_order_at=first_order_at,
                terms=terms,
            )
        decided.append(LineDecision(change, tuple(points), commission))
    return tuple(decided)


def _stand(licences: dict[str, _Licence], licence_id: str | None, points: int) -> None:
    """Points a line credited for its licence: they stand for it from now on."""
    licence = licences.get(licence_id) if licence_id else None
    if licence is not None and licence.standing is not None:
        licence.standing += points


def licences_needing_standing(data: OrderPaidData, licences: Mapping[str, LicenceFact]) -> list[str]:
    """The licences whose standing points a renewal of this order may need (R10): a renewal for
    fewer than the licence has, counting the licences the order's earlier lines add to it."""
    quantity = {i: f.quantity for i, f in licences.items()}
    needed: list[str] = []
    for line in data.lines:
        if not line.licence_id or line.licence_id not in quantity:
            continue
        if line.kind == "new":
            quantity[line.licence_id] += line.quantity
            continue
        fact = licences[line.licence_id]
        if line.quantity < quantity[line.licence_id] and fact.partner_id is not None and line.licence_id not in needed:
            needed.append(line.licence_id)
        quantity[line.licence_id] = line.quantity
    return needed


# --- refunds (R14) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EarnedMoney:
    partner_id: uuid.UUID
    currency: str
    earned: int
    """Commission the line earned (R11, R13: the credits only)."""
    reversed_so_far: int


@dataclass(frozen=True)
class EarnedPoints:
    partner_id: uuid.UUID
    credited: int
    """Points the line credited: new licences (R09) or, for a renewal, the points it restored (R10)."""
    reversed_so_far: int


@dataclass(frozen=True)
class RefundLineFact:
    """A refunded line of the order, as it stands before the refund."""

    id: int
    line_id: str
    quantity: int
    paid: int
    refunded: int
    licence_id: str | None
    money: EarnedMoney | None = None
    points: EarnedPoints | None = None
    standing: int | None = None
    """The points standing for its licence, where a reversal of points needs them."""


@dataclass(frozen=True)
class RefundFacts:
    order_received: bool
    lines: Mapping[str, RefundLineFact] = field(default_factory=dict)
    """The order's lines the refund names, by the store's line id (a missing one is unknown)."""
    terms_now: Terms | None = None
    balances: Mapping[uuid.UUID, BalanceFact] | None = None
    """The partners whose points the lines credited, before the refund (R03); None: not asked."""


@dataclass(frozen=True)
class RefundLineDecision:
    line: RefundLineFact
    refunded: int
    """The line's running total of refunds once this refund line is applied."""
    money: tuple[uuid.UUID, str, crediting.Credit] | None
    points: PointsCredit | None


@dataclass(frozen=True)
class RefundDecision:
    lines: tuple[RefundLineDecision, ...]


def refusal_of_refund(data: OrderRefundedData, facts: RefundFacts) -> Refusal | None:
    """What parks a refund: its order not received yet, a line it does not have, more refunded than paid."""
    if not facts.order_received:
        return Refusal(
            "order_not_received",
            f"Order {data.order_id} has not arrived yet; the refund applies by itself when it does.",
            waiting_for=f"order:{data.order_id}",
        )
    refunded = {line_id: fact.refunded for line_id, fact in facts.lines.items()}
    for refund_line in data.lines:
        fact = facts.lines.get(refund_line.line_id)
        if fact is None:
            return Refusal("unknown_order_line", f"Order {data.order_id} has no line {refund_line.line_id!r}.")
        refunded[fact.line_id] += refund_line.amount
        if refunded[fact.line_id] > fact.paid:
            return Refusal(
                "refund_exceeds_paid",
                f"Refunds of line {fact.line_id} would total {refunded[fact.line_id]}, more than the {fact.paid} paid.",
            )
    return None


def decide_refund(data: OrderRefundedData, facts: RefundFacts) -> Refusal | RefundDecision:
    """R14: what the refund reverses of each line's commission and points, on the running total of the
    line's refunds; or why it is parked."""
    refusal = refusal_of_refund(data, facts)
    if refusal is not None:
        return refusal
    refunded = {line_id: fact.refunded for line_id, fact in facts.lines.items()}
    money_reversed = {i: f.money.reversed_so_far for i, f in facts.lines.items() if f.money is not None}
    points_reversed = {i: f.points.reversed_so_far for i, f in facts.lines.items() if f.points is not None}
    standing = {f.licence_id: f.standing for f in facts.lines.values() if f.licence_id and f.standing is not None}
    balances = _Balances(facts.balances, facts.terms_now)
    decided: list[RefundLineDecision] = []
    for refund_line in data.lines:
        fact = facts.lines[refund_line.line_id]
        refunded[fact.line_id] += refund_line.amount
        money = points = None
        if fact.money is not None:
            credit = crediting.refund_of_line_money(
                refund_id=data.refund_id,
                refunded=refunded[fact.line_id],
                paid=fact.paid,
                earned=fact.money.earned,
                reversed_so_far=-money_reversed[fact.line_id],
            )
            if credit is not None:
                money = (fact.money.partner_id, fact.money.currency, credit)
                money_reversed[fact.line_id] += credit.amount
        if fact.points is not None:
            reversal = _points_reversal(data, fact, refunded[fact.line_id], points_reversed[fact.line_id], None)
            if reversal is not None and fact.licence_id:  # R10/R14: only what still stands (a lapse may have taken it)
                reversal = _points_reversal(
                    data, fact, refunded[fact.line_id], points_reversed[fact.line_id], standing.get(fact.licence_id)
                )
            if reversal is not None:
                partner_id = fact.points.partner_id
                points = PointsCredit(partner_id, reversal, balances.credit(partner_id, reversal.amount))
                points_reversed[fact.line_id] += reversal.amount
                if fact.licence_id in standing:
                    standing[fact.licence_id] = (standing[fact.licence_id] or 0) + reversal.amount
        decided.append(RefundLineDecision(fact, refunded[fact.line_id], money, points))
    return RefundDecision(tuple(decided))


def _points_reversal(
    data: OrderRefundedData, fact: RefundLineFact, refunded: int, reversed_so_far: int, standing: int | None
) -> crediting.Credit | None:
    assert fact.points is not None
    return crediting.refund_of_line_points(
        refund_id=data.refund_id,
        quantity=fact.quantity,
        refunded=refunded,
        paid=fact.paid,
        credited=fact.points.credited,
        reversed_so_far=-reversed_so_far,
        standing=standing,
    )


def licences_needing_standing_for_refund(data: OrderRefundedData, facts: RefundFacts) -> list[str]:
    """The licences whose standing points the refund's reversals may be capped by (R10/R14): those of
    lines whose points it would reverse."""
    decided = decide_refund(data, facts)
    if isinstance(decided, Refusal):
        return []
    return sorted({d.line.licence_id for d in decided.lines if d.points is not None and d.line.licence_id})


# --- lapses (R10) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LapseFacts:
    licence: LicenceFact | None
    renewed_past: bool = False
    """A renewal moved the licence's term end past the lapse's moment (read only where that can be)."""
    grace_days: int = 0
    """The grace period of the terms in force at the licence's term end."""
    standing_points: int = 0
    terms_now: Terms | None = None
    balance: BalanceFact | None = None
    """The licence's partner's balance before the lapse (R03), where it takes points."""


@dataclass(frozen=True)
class LapseDecision:
    outcome: str
    """`lapsed`; `already_lapsed` (a repeat); `renewed_since` (a stale lapse: nothing changes)."""
    effective_at: datetime | None = None
    credit: crediting.Credit | None = None
    """The points it revokes, to the licence's partner."""
    level_change: LevelMove | None = None


def lapse_term_end(licence: LicenceFact, lapsed_at: datetime | None, now: datetime) -> datetime:
    return licence.term_end or lapsed_at or now


def may_be_stale(licence: LicenceFact, lapsed_at: datetime | None) -> bool:
    """Whether a renewal may have moved the term end past the lapse's moment (read it then)."""
    return lapsed_at is not None and licence.term_end is not None and licence.term_end > lapsed_at


def decide_lapse(
    licence_id: str, sku: str, lapsed_at: datetime | None, now: datetime, facts: LapseFacts
) -> Refusal | LapseDecision:
    """R10: a licence not renewed loses the points still standing for it, never before its term end
    plus the grace period; or why the lapse is parked."""
    licence = facts.licence
    if licence is None:
        return Refusal("unknown_licence", f"Licence {licence_id} is not known (its order has not arrived?).")
    if licence.status == "lapsed":
        return LapseDecision("already_lapsed")
    if may_be_stale(licence, lapsed_at) and facts.renewed_past:
        return LapseDecision("renewed_since")
    effective = lapse_term_end(licence, lapsed_at, now) + timedelta(days=facts.grace_days)
    if effective > now:
        # Never applied early (R10): it applies by itself at `effective` (the due-lapses job), unless a
        # renewal of the licence arrives first.
        return Refusal(
            "lapse_not_due",
            f"Licence {licence_id} lapses only at {effective.isoformat()} (its term end"
            + (f" plus {facts.grace_days} day(s) of grace" if facts.grace_days else "")
            + "); this lapse applies by itself then, unless the licence is renewed first.",
            waiting_for=f"licence:{licence_id}",
        )
    credit = move = None
    if licence.partner_id is not None:
        credit = crediting.lapse_points(
            licence_id=licence_id, quantity=licence.quantity, sku=sku, standing_points=facts.standing_points
        )
        if credit is not None:
            assert facts.balance is not None and facts.terms_now is not None, "the partner's balance is gathered"
            _after, move = level_move(facts.balance, credit.amount, facts.terms_now)
    return LapseDecision("lapsed", effective, credit, move)
