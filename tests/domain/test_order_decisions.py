"""Whole events decided (`app/domain/rules/order_decision.py`), with no database: facts in, one
decision out, for orders, refunds and lapses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from app.domain.rules import order_decision as decisions
from app.domain.rules.crediting import CustomerFacts, Outcome, RegistrationFact, RelationshipFact
from app.domain.rules.names import Rule
from app.domain.rules.order_decision import (
    BalanceFact,
    EarnedMoney,
    EarnedPoints,
    LapseFacts,
    LevelMove,
    LicenceFact,
    OrderFacts,
    RefundFacts,
    RefundLineFact,
    Refusal,
)
from app.domain.rules.terms import POLICY_TERMS, Level
from app.domain.store_events import OrderPaidData, OrderRefundedData

A, B = uuid.UUID(int=1), uuid.UUID(int=2)
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
NOW = T0 + timedelta(days=10, minutes=1)


def order(
    *lines: dict[str, Any], buyer: uuid.UUID | None = None, placed: datetime = T0 + timedelta(days=10)
) -> OrderPaidData:
    return OrderPaidData.model_validate(
        {
            "order_id": "ord_1",
            "placed_at": placed.isoformat(),
            "currency": "EUR",
            "buyer": {"type": "partner", "partner_id": str(buyer)} if buyer else {"type": "customer"},
            "customer": {"company": "Acme", "country": "FR", "store_customer_id": "c1"},
            "lines": list(lines),
        }
    )


def line(
    line_id: str, sku: str, quantity: int, paid: int, *, kind: str = "new", licence: str | None = None
) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "sku": sku,
        "quantity": quantity,
        "kind": kind,
        "licence_id": licence,
        "term_end": (T0 + timedelta(days=375)).isoformat(),
        "list_amount": paid,
        "discount_amount": 0,
        "tax_amount": 0,
        "paid_amount": paid,
    }


def registered_by(partner: uuid.UUID) -> CustomerFacts:
    mine = RegistrationFact(uuid.UUID(int=9), partner, T0, T0 + timedelta(days=60), "live")
    return CustomerFacts(first_purchase_at=None, relationship=None, registrations=(mine,))


def facts(**overrides: Any) -> OrderFacts:
    values: dict[str, Any] = {"now": NOW, "terms_version": 1, "terms": POLICY_TERMS, "customers_matched": 1}
    return OrderFacts(**(values | overrides))


def test_r08_r09_r11_an_order_decided_whole_credits_the_registered_partner() -> None:
    data = order(line("l1", "desktop", 2, 100_000, licence="lic_1"), line("l2", "server-business", 1, 250_000))
    decided = decisions.decide_order(data, facts(customer=registered_by(A), eligible=True, points_before=0))
    assert isinstance(decided, decisions.OrderDecision)
    assert (decided.credited_to, decided.outcome, decided.attribution.mode) == (A, Outcome.CREDITED, "referral")
    assert decided.attribution.establish is not None  # the registration becomes the relationship
    first, second = decided.lines
    assert first.licence == decisions.LicenceChange("create", "lic_1", 2, data.lines[0].term_end, A, 1)
    assert [(p.partner_id, p.credit.rule, p.credit.amount) for p in first.points] == [(A, Rule.NEW_LICENCES, 2)]
    assert [(p.credit.amount) for p in second.points] == [4]  # R01: server-business earns 4 a unit
    assert first.commission is not None and first.commission.rule is Rule.REFERRAL_COMMISSION
    assert first.commission.amount == 20_000  # R11: 20 % of what was paid net of tax
    assert second.licence is None  # a line with no licence id sells none


def test_r04_an_order_of_a_partner_that_could_not_earn_is_recorded_and_earns_nothing() -> None:
    data = order(line("l1", "desktop", 2, 100_000, licence="lic_1"))
    decided = decisions.decide_order(data, facts(customer=registered_by(A), eligible=False, points_before=0))
    assert isinstance(decided, decisions.OrderDecision)
    assert (decided.outcome, decided.credited_to, decided.attribution.partner_id) == (
        Outcome.PARTNER_NOT_ELIGIBLE,
        None,
        A,
    )
    [only] = decided.lines
    assert only.points == () and only.commission is None
    assert only.licence is not None and only.licence.partner_id is None  # the licence is sold, to nobody's credit


def test_r10_a_renewal_line_sees_what_the_orders_earlier_lines_did_to_its_licence() -> None:
    # An up-sell of 2 on a licence of 3 standing 3 points, then a renewal for 1: the 4 not renewed lapse.
    held = LicenceFact("lic_1", A, 3, 1, T0, "active", standing_points=3)
    relationship = RelationshipFact(A, "referral", T0, None)
    data = order(
        line("l1", "desktop", 2, 100_000, licence="lic_1"),
        line("l2", "desktop", 1, 50_000, kind="renewal", licence="lic_1"),
    )
    assert decisions.licences_needing_standing(data, {"lic_1": held}) == ["lic_1"]
    decided = decisions.decide_order(
        data,
        facts(
            customer=CustomerFacts(first_purchase_at=T0, relationship=relationship, registrations=()),
            eligible=True,
            points_before=3,
            licences={"lic_1": held},
        ),
    )
    assert isinstance(decided, decisions.OrderDecision)
    upsell, renewal = decided.lines
    assert upsell.licence is not None and upsell.licence.kind == "add"
    assert [p.credit.amount for p in upsell.points] == [2]
    assert renewal.licence is not None and (renewal.licence.kind, renewal.licence.quantity) == ("renew", 1)
    assert [(p.credit.rule, p.credit.amount) for p in renewal.points] == [(Rule.LAPSE_AND_RENEWAL, -4)]


def test_r12_a_partners_purchase_earns_through_its_discount_not_commission() -> None:
    data = order(line("l1", "desktop", 1, 100_000, licence="lic_1"), buyer=A)
    decided = decisions.decide_order(data, facts(customer=registered_by(A), eligible=True, points_before=0))
    assert isinstance(decided, decisions.OrderDecision)
    [only] = decided.lines
    assert only.commission is None and only.expected_discount is not None
    assert only.expected_discount.rate_bp == POLICY_TERMS.resale_rate_bp(Level.AFFILIATE)
    # The decision says whether the store's discount was another one (kept for review, R12).
    assert only.discount_mismatch == (only.expected_discount.amount != 0)  # the store applied none
    at_discount = order(
        {**line("l1", "desktop", 1, 100_000, licence="lic_1"), "discount_amount": only.expected_discount.amount},
        buyer=A,
    )
    again = decisions.decide_order(at_discount, facts(customer=registered_by(A), eligible=True, points_before=0))
    assert isinstance(again, decisions.OrderDecision) and not again.lines[0].discount_mismatch


def test_refusals_come_in_the_order_the_applier_meets_them() -> None:
    data = order(line("l1", "desktop", 1, 100))
    late = order(line("l1", "desktop", 1, 100), placed=NOW + timedelta(minutes=6))
    codes = [
        decisions.decide_order(late, facts()),
        decisions.decide_order(data, facts(terms=None, no_terms="none then")),
        decisions.decide_order(order(line("l1", "no-such-sku", 1, 100)), facts()),
        decisions.decide_order(order(line("l1", "desktop", 1, 100), buyer=B), facts(buyer_known=False)),
        decisions.decide_order(data, facts(customers_matched=2)),
        decisions.decide_order(
            data,
            facts(
                customer=CustomerFacts(
                    first_purchase_at=None,
                    relationship=None,
                    registrations=(registered_by(A).registrations[0], registered_by(B).registrations[0]),
                )
            ),
        ),
    ]
    assert [c.code if isinstance(c, Refusal) else c for c in codes] == [
        "placed_in_future",
        "no_terms",
        "unknown_sku",
        "unknown_partner",
        "ambiguous_customer",
        "registration_conflict",
    ]


def refund(*amounts: tuple[str, int]) -> OrderRefundedData:
    return OrderRefundedData.model_validate(
        {
            "order_id": "ord_1",
            "refund_id": "ref_1",
            "refunded_at": NOW.isoformat(),
            "lines": [{"line_id": line_id, "amount": amount} for line_id, amount in amounts],
        }
    )


def test_r14_a_refund_naming_a_line_twice_reverses_on_its_running_total_and_never_more_than_stands() -> None:
    earned = RefundLineFact(
        id=7,
        line_id="l1",
        quantity=2,
        paid=100_000,
        refunded=0,
        licence_id="lic_1",
        money=EarnedMoney(A, "EUR", earned=20_000, reversed_so_far=0),
        points=EarnedPoints(A, credited=2, reversed_so_far=0),
    )
    data = refund(("l1", 50_000), ("l1", 50_000))
    known = RefundFacts(order_received=True, lines={"l1": earned})
    assert decisions.licences_needing_standing_for_refund(data, known) == ["lic_1"]
    # A lapse took one of the two points: only the one still standing is reversed.
    decided = decisions.decide_refund(data, RefundFacts(order_received=True, lines={"l1": _standing(earned, 1)}))
    assert isinstance(decided, decisions.RefundDecision)
    assert [(d.refunded, d.money[2].amount if d.money else None) for d in decided.lines] == [
        (50_000, -10_000),
        (100_000, -10_000),
    ]
    assert [d.points.credit.amount if d.points else None for d in decided.lines] == [-1, None]


def _standing(fact: RefundLineFact, points: int) -> RefundLineFact:
    return RefundLineFact(**{**fact.__dict__, "standing": points})


def test_r14_refusals_of_a_refund() -> None:
    fact = RefundLineFact(id=7, line_id="l1", quantity=1, paid=100, refunded=60, licence_id=None)
    assert decisions.decide_refund(refund(("l1", 10)), RefundFacts(order_received=False)) == Refusal(
        "order_not_received",
        "Order ord_1 has not arrived yet; the refund applies by itself when it does.",
        waiting_for="order:ord_1",
    )
    received = RefundFacts(order_received=True, lines={"l1": fact})
    assert isinstance(unknown := decisions.decide_refund(refund(("l9", 10)), received), Refusal)
    assert unknown.code == "unknown_order_line"
    assert isinstance(over := decisions.decide_refund(refund(("l1", 30), ("l1", 20)), received), Refusal)
    assert over.code == "refund_exceeds_paid"


def test_r10_a_lapse_waits_for_its_moment_then_takes_what_stands() -> None:
    licence = LicenceFact("lic_1", A, 3, 1, NOW - timedelta(days=1), "active")
    not_due = decisions.decide_lapse(
        "lic_1", "desktop", None, NOW, LapseFacts(licence=licence, grace_days=2, standing_points=3)
    )
    assert isinstance(not_due, Refusal) and (not_due.code, not_due.waiting_for) == ("lapse_not_due", "licence:lic_1")
    due = decisions.decide_lapse(
        "lic_1",
        "desktop",
        None,
        NOW,
        LapseFacts(licence=licence, standing_points=3, terms_now=POLICY_TERMS, balance=BalanceFact(170, Level.GOLD)),
    )
    assert isinstance(due, decisions.LapseDecision) and due.outcome == "lapsed"
    assert due.credit is not None and (due.credit.rule, due.credit.amount) == (Rule.LAPSE_AND_RENEWAL, -3)
    assert due.effective_at == licence.term_end
    assert due.level_change is None  # 167 points: still Gold
    stale = decisions.decide_lapse(
        "lic_1", "desktop", NOW - timedelta(days=30), NOW, LapseFacts(licence=licence, renewed_past=True)
    )
    assert stale == decisions.LapseDecision("renewed_since")
    lapsed = LicenceFact("lic_1", A, 3, 1, NOW, "lapsed")
    assert decisions.decide_lapse("lic_1", "desktop", None, NOW, LapseFacts(licence=lapsed)).outcome == (  # type: ignore[union-attr]
        "already_lapsed"
    )
    unknown = decisions.decide_lapse("lic_9", "desktop", None, NOW, LapseFacts(licence=None))
    assert isinstance(unknown, Refusal) and unknown.code == "unknown_licence"


def test_r03_the_entry_that_crosses_a_threshold_carries_the_level_move() -> None:
    """Levels are decided with the points: the line whose points cross a threshold names the move,
    under the terms in force now; the lines before and after it move nothing."""
    data = order(
        line("l1", "desktop", 2, 100_000, licence="lic_1"),  # 2 points: 157 -> 159, still Silver
        line("l2", "server-business", 1, 250_000),  # 4 points: 159 -> 163, Gold (160)
        line("l3", "desktop", 1, 50_000),  # 1 point: 164, Gold
    )
    known = facts(
        customer=registered_by(A),
        eligible=True,
        points_before=157,
        terms_now=POLICY_TERMS,
        balances={A: BalanceFact(157, Level.SILVER)},
    )
    decided = decisions.decide_order(data, known)
    assert isinstance(decided, decisions.OrderDecision)
    assert [p.level_change for line_ in decided.lines for p in line_.points] == [
        None,
        LevelMove(Level.SILVER, Level.GOLD, 163),
        None,
    ]
    # A quote asks about no balance: it decides no level move (and creates no balance).
    quoted = decisions.decide_order(data, facts(customer=registered_by(A), eligible=True, points_before=157))
    assert isinstance(quoted, decisions.OrderDecision)
    assert all(p.level_change is None for line_ in quoted.lines for p in line_.points)


def test_r03_a_stored_level_behind_the_terms_moves_with_the_next_entry() -> None:
    """The move is from the stored level to the level the terms in force give the new total: a
    level the terms' taking effect has not recomputed yet moves with the next entry."""
    after, move = decisions.level_move(BalanceFact(300, Level.GOLD), 1, POLICY_TERMS)
    assert (after, move) == (BalanceFact(301, Level.PLATINUM), LevelMove(Level.GOLD, Level.PLATINUM, 301))
    assert decisions.level_move(BalanceFact(5, Level.SILVER), 0, POLICY_TERMS) == (BalanceFact(5, Level.SILVER), None)


def test_r03_r14_a_refund_that_takes_points_below_a_threshold_moves_the_level_down() -> None:
    earned = RefundLineFact(
        id=7,
        line_id="l1",
        quantity=4,
        paid=100_000,
        refunded=0,
        licence_id=None,
        points=EarnedPoints(A, credited=4, reversed_so_far=0),
    )
    known = RefundFacts(
        order_received=True,
        lines={"l1": earned},
        terms_now=POLICY_TERMS,
        balances={A: BalanceFact(162, Level.GOLD)},
    )
    decided = decisions.decide_refund(refund(("l1", 50_000), ("l1", 50_000)), known)
    assert isinstance(decided, decisions.RefundDecision)
    assert [(d.points.credit.amount, d.points.level_change) for d in decided.lines if d.points] == [
        (-2, None),  # 160: still Gold
        (-2, LevelMove(Level.GOLD, Level.SILVER, 158)),
    ]


def test_r03_r10_a_lapse_that_takes_points_below_a_threshold_moves_the_level_down() -> None:
    licence = LicenceFact("lic_1", A, 3, 1, NOW - timedelta(days=1), "active")
    due = decisions.decide_lapse(
        "lic_1",
        "desktop",
        None,
        NOW,
        LapseFacts(licence=licence, standing_points=3, terms_now=POLICY_TERMS, balance=BalanceFact(3, Level.SILVER)),
    )
    assert isinstance(due, decisions.LapseDecision)
    assert due.level_change == LevelMove(Level.SILVER, Level.AFFILIATE, 0)
