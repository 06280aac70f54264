"""Payee rules (`app/domain/rules/payee.py`), with no database: IBAN and BIC checks, whether a partner
is payable at a moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.rules.payee import (
    BankAccount,
    NotPayable,
    PayeeFacts,
    Refusal,
    bank_account,
    mask_iban,
    payability,
)

IBAN = "DE89370400440532013000"
"""Commerzbank Köln's example account: schwifty's registry knows its bank (COBADEFF)."""
OTHER_IBAN = "FR1420041010050500013M02606"


def test_an_iban_and_its_banks_bic_are_taken_compact() -> None:
    assert bank_account("de89 3704 0044 0532 0130 00", "cobadeff") == BankAccount(IBAN, "COBADEFF")
    assert bank_account(OTHER_IBAN, "PSSTFRPPXXX") == BankAccount(OTHER_IBAN, "PSSTFRPPXXX")
    assert mask_iban(IBAN) == "DE…3000"


@pytest.mark.parametrize(
    ("iban", "bic", "code", "field"),
    [
        ("DE89370400440532013001", "COBADEFF", "iban_invalid", "iban"),  # a wrong check digit
        ("XX89370400440532013000", "COBADEFF", "iban_invalid", "iban"),  # no such country
        ("DE8937040044053201300", "COBADEFF", "iban_invalid", "iban"),  # too short for Germany
        (IBAN, "COBAXXFF", "bic_invalid", "bic"),
        (IBAN, "BNPAFRPP", "bic_mismatch", "bic"),  # a bank of another country
        (IBAN, "DEUTDEFF", "bic_mismatch", "bic"),  # another bank the registry knows
    ],
)
def test_a_bad_iban_or_bic_is_refused_with_its_code(iban: str, bic: str, code: str, field: str) -> None:
    refused = bank_account(iban, bic)
    assert isinstance(refused, Refusal) and (refused.code, refused.field) == (code, field)
    assert iban not in refused.detail


def test_a_territorys_bank_may_keep_an_account_of_its_countrys_format() -> None:
    assert isinstance(bank_account("GB29NWBK60161331926819", "NWBKGB2L"), BankAccount)
    assert isinstance(bank_account("GB29NWBK60161331926819", "NWBKJESX"), BankAccount)  # Jersey uses GB IBANs


def test_payable_needs_details_past_their_hold_and_the_current_self_billing_agreement() -> None:
    at = datetime(2026, 4, 25, tzinfo=UTC)
    facts = PayeeFacts(recorded_at=at - timedelta(days=30), payouts_held_until=at - timedelta(days=23))
    assert payability(at=at, details=facts, current_self_billing="v2", accepted_self_billing={"v1", "v2"}).payable

    def reasons(**given: Any) -> list[NotPayable]:
        facts_given = {"at": at, "details": facts, "current_self_billing": "v2", "accepted_self_billing": {"v2"}}
        return [reason for reason, _ in payability(**(facts_given | given)).reasons]

    assert reasons(details=None) == [NotPayable.PAYEE_DETAILS_MISSING]
    held = PayeeFacts(recorded_at=at, payouts_held_until=at + timedelta(seconds=1))
    assert reasons(details=held) == [NotPayable.PAYOUTS_HELD]
    assert reasons(current_self_billing=None) == [NotPayable.SELF_BILLING_NOT_PUBLISHED]
    assert reasons(accepted_self_billing=set()) == [NotPayable.SELF_BILLING_NOT_ACCEPTED]
    assert reasons(accepted_self_billing={"v1"}) == [NotPayable.SELF_BILLING_OUTDATED]
    assert reasons(details=None, accepted_self_billing=set()) == [
        NotPayable.PAYEE_DETAILS_MISSING,
        NotPayable.SELF_BILLING_NOT_ACCEPTED,
    ]
