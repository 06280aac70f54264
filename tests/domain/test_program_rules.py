"""Pure program rules: terms (R01, R02), money (R11, R14, R15), identifiers (R05)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from app.domain.rules.identifiers import normalise_domain, normalise_vat, strong_identifiers
from app.domain.rules.money import (
    add_months_clamped,
    commission,
    half_up_div,
    refund_commission_target,
    refund_licences_target,
)
from app.domain.rules.terms import POLICY_TERMS, Level, Terms


def test_r01_points_table_is_the_policy() -> None:
    assert POLICY_TERMS.points_per_sku == {
        "desktop": 1,
        "server-business": 4,
        "server-enterprise": 5,
        "creator": 1,
        "cloud-business": 4,
        "cloud-enterprise": 5,
    }


@pytest.mark.parametrize(
    ("points", "level"),
    [
        (0, Level.AFFILIATE),
        (1, Level.SILVER),
        (159, Level.SILVER),
        (160, Level.GOLD),
        (264, Level.GOLD),
        (265, Level.PLATINUM),
        (10_000, Level.PLATINUM),
        (-3, Level.AFFILIATE),
    ],
)
def test_r02_levels_by_active_points(points: int, level: Level) -> None:
    assert POLICY_TERMS.level_for(points) == level


def test_r02_rates() -> None:
    assert [POLICY_TERMS.rate_bp(lv) for lv in Level] == [0, 2000, 2500, 3000]
    assert POLICY_TERMS.referral_rate_bp == 2000


def test_r12_affiliate_buying_for_resale_gets_the_silver_rate() -> None:
    assert POLICY_TERMS.resale_rate_bp(Level.AFFILIATE) == 2000
    assert POLICY_TERMS.resale_rate_bp(Level.GOLD) == 2500


def test_terms_refuse_inconsistent_levels_and_zones() -> None:
    data = POLICY_TERMS.model_dump()
    data["levels"][2]["min_points"] = 1
    with pytest.raises(ValidationError):
        Terms.model_validate(data)
    with pytest.raises(ValidationError):
        Terms.model_validate({**POLICY_TERMS.model_dump(), "time_zone": "Mars/Olympus"})


@pytest.mark.parametrize(
    ("paid", "rate", "expected"),
    [(48000, 2000, 9600), (12345, 2000, 2469), (5, 1000, 1), (4, 1250, 1), (2, 2500, 1), (1, 2500, 0)],
)
def test_r15_commission_rounds_half_up_per_line(paid: int, rate: int, expected: int) -> None:
    assert commission(paid, rate) == expected


def test_r15_half_up_is_symmetric() -> None:
    assert half_up_div(5, 10) == 1 and half_up_div(-5, 10) == -1 and half_up_div(4, 10) == 0


def test_r14_refund_shares_on_running_totals() -> None:
    # A line of 3 licences paying 300 with 60 commission: small goodwill refund reverses commission only.
    assert refund_licences_target(3, 10, 300) == 0
    assert refund_commission_target(60, 10, 300) == 2
    assert refund_licences_target(3, 100, 300) == 1 and refund_commission_target(60, 100, 300) == 20
    # The refund that completes the line reverses exactly what remains.
    assert refund_licences_target(3, 300, 300) == 3 and refund_commission_target(60, 300, 300) == 60


def test_r11_window_adds_calendar_months_clamped() -> None:
    assert add_months_clamped(datetime(2028, 2, 29, 12, tzinfo=UTC), 12) == datetime(2029, 2, 28, 12, tzinfo=UTC)
    assert add_months_clamped(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2026, 3, 15, 0, 30, tzinfo=paris)
    assert add_months_clamped(start, 12) == datetime(2027, 3, 15, 0, 30, tzinfo=paris)


def test_r05_identifiers_are_normalised() -> None:
    assert normalise_vat("fr 40-303.265.045", "FR") == "FR40303265045"
    assert normalise_vat("40303265045", "FR") == "FR40303265045"
    assert normalise_vat("123456789", "GR") == "EL123456789"
    assert normalise_domain("Jane@WWW.Contoso.Example") == "contoso.example"
    check = strong_identifiers(country="FR", vat_id=None, email="jane@gmail.com", domain=None, store_customer_id=None)
    assert check.identifiers == () and check.free_mail_domain == "gmail.com"
    both = strong_identifiers(
        country="FR", vat_id="FR40303265045", email="a@contoso.example", domain=None, store_customer_id=" cus_1 "
    )
    assert {(i.kind, i.value) for i in both.identifiers} == {
        ("vat", "FR40303265045"),
        ("domain", "contoso.example"),
        ("store_id", "cus_1"),
    }
