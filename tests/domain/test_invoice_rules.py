"""The VAT a self-billed invoice carries, its lines, and the remittance text of its transfer."""

from __future__ import annotations

import pytest

from app.domain.rules import invoices as rules
from app.domain.rules.invoices import VatTreatment

RATES = {"FR": 2000, "DE": 1900}


@pytest.mark.parametrize(
    ("country", "registered", "treatment", "rate", "mention"),
    [
        ("FR", True, VatTreatment.DOMESTIC, 2000, None),
        ("DE", True, VatTreatment.REVERSE_CHARGE, None, rules.REVERSE_CHARGE_MENTION),
        ("DE", False, VatTreatment.NOT_REGISTERED, None, None),
        ("FR", False, VatTreatment.NOT_REGISTERED, None, None),
        ("US", True, VatTreatment.OUTSIDE_EU, None, rules.OUTSIDE_EU_MENTION),
        ("CH", False, VatTreatment.OUTSIDE_EU, None, rules.OUTSIDE_EU_MENTION),
    ],
)
def test_the_vat_follows_the_partners_standing(
    country: str, registered: bool, treatment: VatTreatment, rate: int | None, mention: str | None
) -> None:
    vat = rules.vat(partner_country=country, vat_registered=registered, vendor_country="FR", rates=RATES)
    assert (vat.treatment, vat.rate_bp, vat.mention) == (treatment, rate, mention)


def test_a_domestic_partner_needs_the_vendor_countrys_rate() -> None:
    with pytest.raises(rules.VatRateMissing):
        rules.vat(partner_country="IT", vat_registered=True, vendor_country="IT", rates=RATES)


def test_vat_is_rounded_half_up_to_the_cent() -> None:
    assert rules.vat_amount(10_000, 2000) == 2000
    assert rules.vat_amount(1_234, 1900) == 234  # 234.46
    assert rules.vat_amount(50, 1000) == 5
    assert rules.vat_amount(25, 2000) == 5  # 5.0
    assert rules.vat_amount(5, 1000) == 1  # 0.5 rounds up
    assert rules.vat_amount(10_000, None) == 0


def test_one_line_per_kind_of_commission_then_the_carried_balance() -> None:
    made = rules.lines([("R13", 500), ("R11", 1000), ("R11", -200), ("ADJ", 300)], -100, {"R11": "Referral"})
    assert [(x.rule, x.description, x.amount) for x in made] == [
        ("ADJ", "Commission (ADJ)", 300),
        ("R11", "Referral", 800),
        ("R13", "Commission (R13)", 500),
        (None, "Balance carried from the previous statement", -100),
    ]


def test_the_remittance_names_the_invoices_or_the_run_when_they_do_not_fit() -> None:
    assert rules.remittance("PR-1", ["SB-2026-000001"]) == "Invoice SB-2026-000001"
    assert rules.remittance("PR-1", ["SB-2026-000001", "SB-2026-000002"]) == ("Invoices SB-2026-000001, SB-2026-000002")
    many = [f"SB-2026-{n:06d}" for n in range(1, 12)]
    text = rules.remittance("PR-20260425-1A2B3C4D", many)
    assert text == "11 invoices, see statement list of payout run PR-20260425-1A2B3C4D"
    assert all(len(rules.remittance("PR-1", many[:n])) <= 140 for n in range(1, 12))
