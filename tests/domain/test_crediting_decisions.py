"""The crediting decisions (`app/domain/rules/crediting.py`), with no database: facts in, decision out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.rules import crediting
from app.domain.rules.crediting import CustomerFacts, Outcome, RegistrationFact, RelationshipFact
from app.domain.rules.names import Rule
from app.domain.rules.terms import POLICY_TERMS, Level

A, B = uuid.UUID(int=1), uuid.UUID(int=2)
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


def registration(partner: uuid.UUID, registered: int, *, state: str = "live", days: int = 60) -> RegistrationFact:
    return RegistrationFact(uuid.uuid4(), partner, at(registered), at(registered + days), state)


def customer(
    *registrations: RegistrationFact, relationship: RelationshipFact | None = None, first: datetime | None = None
) -> CustomerFacts:
    return CustomerFacts(first_purchase_at=first, relationship=relationship, registrations=registrations)


def test_r08_a_direct_order_within_one_registration_establishes_a_referral() -> None:
    mine = registration(A, 0)
    decided = crediting.attribute(at=at(10), buyer_partner_id=None, customer=customer(mine))
    assert (decided.partner_id, decided.mode, decided.outcome, decided.establish) == (
        A,
        "referral",
        Outcome.CREDITED,
        mine,
    )


def test_r08_no_registration_and_no_relationship_is_no_match() -> None:
    assert crediting.attribute(at=at(10), buyer_partner_id=None, customer=customer()).outcome is Outcome.NO_MATCH


def test_r08_registrations_of_two_partners_wait_for_an_admin() -> None:
    decided = crediting.attribute(
        at=at(10), buyer_partner_id=None, customer=customer(registration(A, 0), registration(B, 1))
    )
    assert decided.several_partners and decided.partner_id is None


def test_r07_a_registration_made_after_the_customers_first_purchase_does_not_qualify() -> None:
    late = registration(A, 5)
    facts = customer(late, first=at(3))
    assert crediting.attribute(at=at(10), buyer_partner_id=None, customer=facts).outcome is Outcome.NO_MATCH


def test_r08_a_relationship_in_force_takes_the_order_and_a_partner_purchase_turns_referral_to_resale() -> None:
    held = RelationshipFact(A, "referral", at(0), None)
    direct = crediting.attribute(at=at(30), buyer_partner_id=None, customer=customer(relationship=held))
    assert (direct.partner_id, direct.mode, direct.becomes_resale) == (A, "referral", False)
    bought = crediting.attribute(at=at(30), buyer_partner_id=A, customer=customer(relationship=held))
    assert (bought.partner_id, bought.mode, bought.becomes_resale) == (A, "resale", True)
    other = crediting.attribute(at=at(30), buyer_partner_id=B, customer=customer(relationship=held))
    assert (other.partner_id, other.outcome) == (None, Outcome.CUSTOMER_OF_ANOTHER_PARTNER)


def test_r08_a_late_order_within_another_partners_registration_leaves_the_relationship_and_is_flagged() -> None:
    held = RelationshipFact(A, "referral", at(20), None)
    theirs = registration(B, 0)
    decided = crediting.attribute(at=at(10), buyer_partner_id=None, customer=customer(theirs, relationship=held))
    assert (decided.partner_id, decided.outcome, decided.conflicts) == (
        None,
        Outcome.RELATIONSHIP_CONFLICT,
        (theirs,),
    )
    assert not crediting.registrations_needed(held, at(30)) and crediting.registrations_needed(held, at(10))


def test_r04_r22_r17_limits_apply_in_order_the_later_winning() -> None:
    assert crediting.outcome(Outcome.CREDITED, eligible=True, own_company=False, sells_nfr=False) == (
        Outcome.CREDITED,
        True,
    )
    assert crediting.outcome(Outcome.CREDITED, eligible=False, own_company=False, sells_nfr=False) == (
        Outcome.PARTNER_NOT_ELIGIBLE,
        False,
    )
    assert crediting.outcome(Outcome.NO_MATCH, eligible=None, own_company=True, sells_nfr=False) == (
        Outcome.OWN_COMPANY,
        False,
    )
    assert crediting.outcome(Outcome.CREDITED, eligible=False, own_company=True, sells_nfr=True) == (
        Outcome.NFR_LICENCE_SOLD,
        False,
    )
    # Eligibility is asked only of the partner the order belongs to.
    assert crediting.outcome(Outcome.NO_MATCH, eligible=False, own_company=False, sells_nfr=False) == (
        Outcome.NO_MATCH,
        False,
    )


def test_r09_new_licences_earn_the_skus_points_per_unit() -> None:
    credit = crediting.new_licence_points(quantity=3, sku="server-business", terms=POLICY_TERMS)
    assert (credit.rule, credit.amount) == (Rule.NEW_LICENCES, 12)


@pytest.mark.parametrize(
    ("mode", "level", "placed", "expected"),
    [
        ("referral", Level.AFFILIATE, 30, (Rule.REFERRAL_COMMISSION, 2000)),  # R11: 20 % within the window
        ("referral", Level.GOLD, 400, None),  # R11's window is over; R13 is not a referral's
        ("resale", Level.AFFILIATE, 30, None),  # R13 starts at Silver
        ("resale", Level.GOLD, 30, (Rule.LIFETIME_COMMISSION, 2500)),  # R13: Gold 25 %
    ],
)
def test_r11_r13_commission_of_a_line_the_customer_paid_itself(
    mode: str, level: Level, placed: int, expected: tuple[Rule, int] | None
) -> None:
    credit = crediting.commission_of(
        net=10_000,
        quantity=1,
        sku="desktop",
        placed_at=at(placed),
        level=level,
        mode=mode,
        first_order_at=at(0),
        terms=POLICY_TERMS,
    )
    assert (None if credit is None else (credit.rule, credit.amount)) == expected


def test_r12_the_expected_discount_is_the_levels_resale_rate_or_none() -> None:
    gold = crediting.expected_discount(list_amount=10_000, level=Level.GOLD, why_none=None, terms=POLICY_TERMS)
    assert (gold.rate_bp, gold.amount) == (POLICY_TERMS.resale_rate_bp(Level.GOLD), 10_000 * gold.rate_bp // 10_000)
    refused = crediting.expected_discount(
        list_amount=10_000, level=Level.GOLD, why_none=Outcome.OWN_COMPANY, terms=POLICY_TERMS
    )
    assert (refused.amount, refused.why) == (0, "no discount applies: own_company")


def test_r10_renewal_restores_what_the_lapse_took_for_the_licences_renewed_only() -> None:
    def renew(**facts: int | bool | None) -> int | None:
        defaults: dict[str, int | bool | None] = {
            "licence_quantity": 4,
            "points_per_unit": 4,
            "renewed_quantity": 2,
            "revoked_by_lapse": None,
            "standing_points": None,
            "eligible": None,
        }
        credit = crediting.renewal_points(licence_id="lic", **{**defaults, **facts})  # type: ignore[arg-type]
        return None if credit is None else credit.amount

    assert renew(revoked_by_lapse=16, eligible=True) == 8  # 2 of 4 renewed
    assert renew(revoked_by_lapse=16, eligible=False) is None  # R04: suspended when renewed
    assert renew(revoked_by_lapse=0, eligible=None) is None  # its lapse took nothing
    assert renew(standing_points=16) == -8  # active, renewed for 2 of 4: the other 2 lapse
    assert renew(standing_points=4) == -4  # never more than still stands
    assert renew(renewed_quantity=4, standing_points=16) is None


def test_r10_a_lapse_takes_the_points_still_standing() -> None:
    credit = crediting.lapse_points(licence_id="lic", quantity=2, sku="desktop", standing_points=2)
    assert credit is not None and (credit.rule, credit.amount) == (Rule.LAPSE_AND_RENEWAL, -2)
    assert crediting.lapse_points(licence_id="lic", quantity=2, sku="desktop", standing_points=0) is None


def test_r14_refunds_reverse_on_running_totals() -> None:
    half = crediting.refund_of_line_money(refund_id="r1", refunded=500, paid=1000, earned=101, reversed_so_far=0)
    assert half is not None and (half.rule, half.amount) == (Rule.REFUND, -51)
    rest = crediting.refund_of_line_money(refund_id="r2", refunded=1000, paid=1000, earned=101, reversed_so_far=51)
    assert rest is not None and rest.amount == -50
    assert (
        crediting.refund_of_line_money(refund_id="r3", refunded=1000, paid=1000, earned=101, reversed_so_far=101)
        is None
    )
    points = crediting.refund_of_line_points(
        refund_id="r1", quantity=4, refunded=500, paid=1000, credited=16, reversed_so_far=0, standing=None
    )
    assert points is not None and points.amount == -8
    capped = crediting.refund_of_line_points(
        refund_id="r1", quantity=4, refunded=500, paid=1000, credited=16, reversed_so_far=0, standing=3
    )
    assert capped is not None and capped.amount == -3  # a lapse took the rest
