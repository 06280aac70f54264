"""What an order earns, decided: pure functions of the facts read about it (R08-R14, R17, R22).

No session, no clock, no I/O: the applier (`app.domain.orders`) reads the facts, asks these
functions, and writes what they decide; the quote (`app.domain.pricing`) asks the same functions
about an order that has not happened, so a quote and the order it prices cannot disagree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.domain.rules.money import (
    add_months_clamped,
    commission,
    refund_commission_target,
    refund_licences_target,
)
from app.domain.rules.names import Rule
from app.domain.rules.terms import LEVEL_ORDER, Level, Terms


class Outcome(StrEnum):
    """What an order came to (`orders.outcome`): credited, or why it earns nothing."""

    CREDITED = "credited"
    NO_MATCH = "no_match"
    """A customer buying directly that no partner registered or holds (R08)."""
    CUSTOMER_NOT_REGISTERED = "customer_not_registered"
    """A partner bought for a customer it neither registered nor holds (R08, R12)."""
    CUSTOMER_OF_ANOTHER_PARTNER = "customer_of_another_partner"
    RELATIONSHIP_CONFLICT = "relationship_conflict"
    """Placed within a registration, but the customer's relationship is another's (R08)."""
    PARTNER_NOT_ELIGIBLE = "partner_not_eligible"
    """The partner it belongs to could not earn when it was placed (R04)."""
    OWN_COMPANY = "own_company"
    """The end customer is the buying or attributed partner's own company (R22)."""
    NFR_LICENCE_SOLD = "nfr_licence_sold"
    """It sells a not-for-resale licence (R17)."""


@dataclass(frozen=True)
class RelationshipFact:
    partner_id: uuid.UUID
    mode: str
    first_order_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class RegistrationFact:
    id: uuid.UUID
    partner_id: uuid.UUID
    registered_at: datetime
    expires_at: datetime
    state: str


@dataclass(frozen=True)
class CustomerFacts:
    """What attribution needs to know of the end customer, at the moment the order was placed."""

    first_purchase_at: datetime | None
    relationship: RelationshipFact | None
    """Its relationship (one at most), whether or not in force then."""
    registrations: tuple[RegistrationFact, ...]
    """Its registrations whose window contains the moment, live, expired or converted; read only when
    `registrations_needed` says so (empty otherwise)."""


NEW_CUSTOMER = CustomerFacts(first_purchase_at=None, relationship=None, registrations=())
"""A customer the vendor does not know yet: no relationship, no registration, never bought."""


def registrations_needed(relationship: RelationshipFact | None, at: datetime) -> bool:
    """Whether attributing an order placed at `at` may look at the customer's registrations: not when
    a relationship in force since before `at` answers alone."""
    return (
        relationship is None
        or (relationship.ended_at is not None and relationship.ended_at <= at)
        or (at < relationship.first_order_at)
    )


def relationship_in_force(customer: CustomerFacts, at: datetime) -> RelationshipFact | None:
    """The customer's relationship if it is in force at `at`, or None.

    Not once a termination ended it. An order placed before the relationship's first order (it
    arrived late) is covered only when it was placed within the registration that established the
    relationship; one placed before that registration is not (R07, E3)."""
    relationship = customer.relationship
    if relationship is None or (relationship.ended_at is not None and relationship.ended_at <= at):
        return None
    if at >= relationship.first_order_at:
        return relationship
    return relationship if any(r.partner_id == relationship.partner_id for r in customer.registrations) else None


def qualifies(registration: RegistrationFact, first_purchase_at: datetime | None) -> bool:
    """R07/E3: the registration was live or expired (not converted), made before the order and
    before any earlier purchase of the customer."""
    return registration.state in ("live", "expired") and (
        first_purchase_at is None or first_purchase_at > registration.registered_at
    )


def resale_status(
    partner_id: uuid.UUID, customer: CustomerFacts | None, at: datetime
) -> tuple[Outcome | None, RegistrationFact | None, RelationshipFact | None]:
    """R08/R12: is the end customer this partner's registered or established customer at `at`?

    Returns (why it is not, or None; the qualifying registration; the relationship in force)."""
    if customer is None:
        return Outcome.CUSTOMER_NOT_REGISTERED, None, None
    relationship = relationship_in_force(customer, at)
    if relationship is not None:
        if relationship.partner_id == partner_id:
            return None, None, relationship
        return Outcome.CUSTOMER_OF_ANOTHER_PARTNER, None, relationship
    for registration in customer.registrations:
        if registration.partner_id == partner_id and qualifies(registration, customer.first_purchase_at):
            return None, registration, None
    return Outcome.CUSTOMER_NOT_REGISTERED, None, None


@dataclass(frozen=True)
class Attribution:
    """R08: who, if anyone, an order belongs to, and what that changes."""

    partner_id: uuid.UUID | None
    mode: str | None
    outcome: Outcome
    relationship: RelationshipFact | None = None
    """The relationship in force the order is credited through."""
    establish: RegistrationFact | None = None
    """The registration the order converts into the customer's relationship (in `mode`)."""
    becomes_resale: bool = False
    """The relationship in force was a referral: a partner's purchase turns it into resale (never the
    other way)."""
    conflicts: tuple[RegistrationFact, ...] = ()
    """Registrations that would have made the order theirs, had the customer's relationship not been
    established since: each is flagged `relationship_conflict`."""
    several_partners: bool = False
    """Live registrations of several partners match: an admin must decide (the order is parked)."""


def attribute(*, at: datetime, buyer_partner_id: uuid.UUID | None, customer: CustomerFacts) -> Attribution:
    """R08: who an order placed at `at` belongs to.

    A customer has one relationship. An order that arrives late, placed within a registration of a
    partner after which another relationship was established (or one that has ended), leaves that
    relationship as it is: the order earns nothing and is flagged `relationship_conflict`."""
    if buyer_partner_id is not None:
        reason, registration, relationship = resale_status(buyer_partner_id, customer, at)
        if reason is not None:
            return Attribution(None, None, reason)
        if relationship is not None:
            return Attribution(
                buyer_partner_id,
                "resale",
                Outcome.CREDITED,
                relationship,
                becomes_resale=relationship.mode == "referral",
            )
        assert registration is not None
        if customer.relationship is not None:
            return Attribution(None, None, Outcome.RELATIONSHIP_CONFLICT, conflicts=(registration,))
        return Attribution(buyer_partner_id, "resale", Outcome.CREDITED, establish=registration)
    relationship = relationship_in_force(customer, at)
    if relationship is not None:
        return Attribution(relationship.partner_id, relationship.mode, Outcome.CREDITED, relationship)
    covering = [r for r in customer.registrations if qualifies(r, customer.first_purchase_at)]
    if covering and customer.relationship is not None:
        ordered = sorted(covering, key=lambda r: (r.registered_at, str(r.partner_id)))
        return Attribution(None, None, Outcome.RELATIONSHIP_CONFLICT, conflicts=tuple(ordered))
    if len({r.partner_id for r in covering}) > 1:
        return Attribution(None, None, Outcome.NO_MATCH, several_partners=True)
    if not covering:
        return Attribution(None, None, Outcome.NO_MATCH)
    return Attribution(covering[0].partner_id, "referral", Outcome.CREDITED, establish=covering[0])


def outcome(attributed: Outcome, *, eligible: bool | None, own_company: bool, sells_nfr: bool) -> tuple[Outcome, bool]:
    """The order's outcome once the limits are applied, and whether it earns.

    In this order, the later winning: the attribution's; R04 (the partner it belongs to could not
    earn then: `eligible` False; None when it belongs to no partner); R22 (the buying or attributed
    partner's own company); R17 (it sells a not-for-resale licence)."""
    result, earns = attributed, attributed is Outcome.CREDITED
    if earns and eligible is False:
        result, earns = Outcome.PARTNER_NOT_ELIGIBLE, False
    if own_company:
        result, earns = Outcome.OWN_COMPANY, False
    if sells_nfr:
        result, earns = Outcome.NFR_LICENCE_SOLD, False
    return result, earns


@dataclass(frozen=True)
class Credit:
    """An entry a line earns: points or money, by `rule`, with its explanation (R21)."""

    rule: Rule
    amount: int
    explanation: str
    rate_bp: int | None = None
    base: int | None = None


@dataclass(frozen=True)
class ExpectedDiscount:
    """R12: the discount the store should have granted a buying partner on a line, and why."""

    rate_bp: int
    amount: int
    why: str


def new_licence_points(*, quantity: int, sku: str, terms: Terms) -> Credit:
    """R09: new licences earn quantity x the SKU's points, with no time limit."""
    per_unit = terms.points_per_sku[sku]
    return Credit(
        Rule.NEW_LICENCES, quantity * per_unit, f"{quantity} x {sku} new licence(s) at {per_unit} point(s) each"
    )


def commission_of(
    *,
    net: int,
    quantity: int,
    sku: str,
    placed_at: datetime,
    level: Level,
    mode: str,
    first_order_at: datetime,
    terms: Terms,
) -> Credit | None:
    """The commission a line of an order the customer paid itself (`net`: tax excluded, R23) earns the
    partner at `level` that holds the customer in `mode`, or None: R11 within a referral's window
    (nothing after it); R13 for Silver and above on a resale customer buying directly. An order a
    partner bought earns through its discount instead (R12)."""
    if mode == "referral":
        window_end = add_months_clamped(first_order_at.astimezone(terms.zone), terms.referral_window_months)
        if placed_at >= window_end:
            return None
        return Credit(
            Rule.REFERRAL_COMMISSION,
            commission(net, terms.referral_rate_bp),
            f"referral commission {terms.referral_rate_bp / 100:g} % of {net} paid net of tax for {quantity} x "
            f"{sku} (window until {window_end.date().isoformat()})",
            rate_bp=terms.referral_rate_bp,
            base=net,
        )
    if LEVEL_ORDER.index(level) < LEVEL_ORDER.index(Level.SILVER):
        return None
    rate = terms.rate_bp(level)
    return Credit(
        Rule.LIFETIME_COMMISSION,
        commission(net, rate),
        f"lifetime commission {rate / 100:g} % ({level.value}) of {net} paid net of tax directly for "
        f"{quantity} x {sku}",
        rate_bp=rate,
        base=net,
    )


def expected_discount(
    *, list_amount: int, level: Level | None, why_none: Outcome | None, terms: Terms
) -> ExpectedDiscount:
    """R12: the discount a buying partner should get on a line: its level's resale rate when the
    order is credited to it, none otherwise (`why_none`: the order's outcome)."""
    if level is None or why_none is not None:
        return ExpectedDiscount(0, 0, f"no discount applies: {why_none.value if why_none else 'no level'}")
    rate = resale_rate_bp(level, terms)
    return ExpectedDiscount(rate, commission(list_amount, rate), f"level {level.value}")


def resale_rate_bp(level: Level | None, terms: Terms) -> int:
    """R12: the discount rate a buying partner at `level` gets; 0 when no level prices the order."""
    return 0 if level is None else terms.resale_rate_bp(level)


def renewal_points(
    *,
    licence_id: str,
    licence_quantity: int,
    points_per_unit: int,
    renewed_quantity: int,
    revoked_by_lapse: int | None,
    standing_points: int | None,
    eligible: bool | None,
) -> Credit | None:
    """R10: what renewing a licence does to its partner's points.

    A licence whose lapse was entered (`revoked_by_lapse`: the points that entry took, 0 if none) gets
    them back for the licences renewed only, if its partner may earn then (`eligible`). Any other
    licence renewed for fewer than it had loses the points of those not renewed, from those still
    standing for it (`standing_points`)."""
    if revoked_by_lapse is not None:
        restored = min(revoked_by_lapse, renewed_quantity * points_per_unit)
        if not eligible or restored <= 0:
            return None
        return Credit(
            Rule.LAPSE_AND_RENEWAL,
            restored,
            f"licence {licence_id} renewed after its lapse: restores {restored} of the {revoked_by_lapse} point(s) "
            "the lapse revoked",
        )
    if renewed_quantity >= licence_quantity or standing_points is None:
        return None
    lost = min(standing_points, (licence_quantity - renewed_quantity) * points_per_unit)
    if lost <= 0:
        return None
    return Credit(
        Rule.LAPSE_AND_RENEWAL,
        -lost,
        f"licence {licence_id} renewed for {renewed_quantity} of {licence_quantity}: the "
        f"{licence_quantity - renewed_quantity} not renewed lapse",
    )


def lapse_points(*, licence_id: str, quantity: int, sku: str, standing_points: int) -> Credit | None:
    """R10: a licence not renewed loses the points still standing for it."""
    if standing_points <= 0:
        return None
    return Credit(
        Rule.LAPSE_AND_RENEWAL,
        -standing_points,
        f"licence {licence_id} ({quantity} x {sku}) not renewed: its {standing_points} standing point(s) are revoked",
    )


def refund_of_line_money(
    *, refund_id: str, refunded: int, paid: int, earned: int, reversed_so_far: int
) -> Credit | None:
    """R14: the commission entry that brings a line's reversal to what the running total of its refunds
    (`refunded` of `paid`) reverses of the `earned` commission, or None when it is there already."""
    target = refund_commission_target(earned, refunded, paid)
    if target == reversed_so_far:
        return None
    return Credit(
        Rule.REFUND,
        -(target - reversed_so_far),
        f"refund {refund_id}: {refunded} of {paid} refunded reverses {target} of the {earned} commission",
    )


def refund_of_line_points(
    *,
    refund_id: str,
    quantity: int,
    refunded: int,
    paid: int,
    credited: int,
    reversed_so_far: int,
    standing: int | None,
) -> Credit | None:
    """R14: the points entry that brings a line's reversal to the points of the licences the running
    total of its refunds (`refunded` of `paid`) covers, of the `credited` points (R09, or a renewal's
    R10 restore); never more than still stands for its licence (`standing`, when known: a lapse may
    have taken them)."""
    per_unit = credited // quantity if quantity else 0
    licences = refund_licences_target(quantity, refunded, paid)
    delta = licences * per_unit - reversed_so_far
    if standing is not None and delta > 0:
        delta = min(delta, max(0, standing))
    if delta <= 0:
        return None
    return Credit(
        Rule.REFUND, -delta, f"refund {refund_id}: {licences if per_unit else 0} of {quantity} licence(s) refunded"
    )
