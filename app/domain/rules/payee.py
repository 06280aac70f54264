"""Payee details: the bank account a partner is paid to, and whether a partner is payable at a moment.

Pure: IBAN and BIC are checked with schwifty (the IBAN's checksum and its country's format, the BIC's
form, and that the BIC is of the IBAN's country and, where schwifty's bank registry knows the IBAN's
bank, of that bank); `payability` decides from facts read elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schwifty import BIC, IBAN
from schwifty.exceptions import NationalChecksumNotVerified, SchwiftyException

TERRITORIES: dict[str, frozenset[str]] = {
    # IBAN country -> the countries a BIC of its banks may name (ISO 13616 registry: these territories
    # use the IBAN format of the country, their banks' BICs their own country code).
    "FR": frozenset({"GF", "GP", "MQ", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF", "TF"}),
    "GB": frozenset({"JE", "GG", "IM"}),
    "FI": frozenset({"AX"}),
}


@dataclass(frozen=True)
class Refusal:
    """Why a value is refused: a stable code, a sentence and the field it is about."""

    code: str
    detail: str
    field: str


@dataclass(frozen=True)
class BankAccount:
    iban: str
    """Compact: upper case, no spaces."""
    bic: str
    """Compact, 8 or 11 characters."""

    @property
    def iban_masked(self) -> str:
        return mask_iban(self.iban)


def mask_iban(iban: str) -> str:
    """The IBAN's country and its last four characters, e.g. `DE…3000`: enough to recognise it."""
    return f"{iban[:2]}…{iban[-4:]}"


def bank_account(iban: str, bic: str) -> BankAccount | Refusal:
    """The account, compacted, or why it is refused."""
    try:
        with warnings.catch_warnings():
            # A country whose national check digits schwifty cannot compute: they are taken as given.
            warnings.simplefilter("ignore", NationalChecksumNotVerified)
            account = IBAN(iban, validate_bban=True)
    except ValueError as exc:  # schwifty's errors are ValueErrors
        return Refusal(code="iban_invalid", detail=f"The IBAN is not valid: {_reason(exc)}.", field="iban")
    try:
        code = BIC(bic)
    except ValueError as exc:
        return Refusal(code="bic_invalid", detail=f"The BIC {bic!r} is not valid: {_reason(exc)}.", field="bic")
    country = account.country_code
    if code.country_code != country and code.country_code not in TERRITORIES.get(country, frozenset()):
        return Refusal(
            code="bic_mismatch",
            detail=f"The BIC {code.compact} is of a bank in {code.country_code}; the IBAN's account is in {country}.",
            field="bic",
        )
    known = _institutions(country, account.bank_code)
    if known and code.compact[:4] not in known:
        return Refusal(
            code="bic_mismatch",
            detail=f"The BIC {code.compact} is not of the IBAN's bank (bank code {account.bank_code}: "
            f"{', '.join(sorted(known))}).",
            field="bic",
        )
    return BankAccount(iban=account.compact, bic=code.compact)


def _institutions(country: str, bank_code: str) -> frozenset[str]:
    """The institution codes (a BIC's first four letters) schwifty's registry gives for the bank; none
    when it does not know the bank."""
    if not bank_code:
        return frozenset()
    try:
        return frozenset(candidate.compact[:4] for candidate in BIC.candidates_from_bank_code(country, bank_code))
    except SchwiftyException:  # InvalidBankCode: a bank the registry does not know
        return frozenset()


def _reason(exc: ValueError) -> str:
    text = str(exc).strip().rstrip(".")
    return text[:1].lower() + text[1:] if text else exc.__class__.__name__


# --- payable at a moment -------------------------------------------------------------------------


class NotPayable(StrEnum):
    """Why a partner cannot be paid at a moment."""

    PAYEE_DETAILS_MISSING = "payee_details_missing"
    PAYOUTS_HELD = "payouts_held"
    SELF_BILLING_NOT_PUBLISHED = "self_billing_not_published"
    SELF_BILLING_NOT_ACCEPTED = "self_billing_not_accepted"
    SELF_BILLING_OUTDATED = "self_billing_outdated"


@dataclass(frozen=True)
class PayeeFacts:
    """What `payability` needs of a partner's payee details, as they stood at the moment."""

    recorded_at: datetime
    payouts_held_until: datetime | None


@dataclass(frozen=True)
class Payability:
    at: datetime
    reasons: tuple[tuple[NotPayable, str], ...]
    """Each reason it cannot be paid, with a sentence; empty when it can."""

    @property
    def payable(self) -> bool:
        return not self.reasons


def payability(
    *,
    at: datetime,
    details: PayeeFacts | None,
    current_self_billing: str | None,
    accepted_self_billing: Collection[str],
) -> Payability:
    """Whether a partner is payable at `at`: payee details recorded, past the hold a change of bank
    details set, and the self-billing agreement in force at `at` accepted; every reason when not.

    `details`: the partner's payee details at `at` (None: none yet); `current_self_billing`: the
    version in force at `at` (None: none published); `accepted_self_billing`: the versions the partner
    had accepted by `at`.
    """
    reasons: list[tuple[NotPayable, str]] = []
    if details is None:
        reasons.append((NotPayable.PAYEE_DETAILS_MISSING, "No payee details are recorded."))
    elif details.payouts_held_until is not None and at < details.payouts_held_until:
        reasons.append(
            (
                NotPayable.PAYOUTS_HELD,
                f"The bank details changed: payouts are held until {details.payouts_held_until.isoformat()}.",
            )
        )
    if current_self_billing is None:
        reasons.append((NotPayable.SELF_BILLING_NOT_PUBLISHED, "No self-billing agreement is published."))
    elif current_self_billing not in accepted_self_billing:
        if accepted_self_billing:
            reasons.append(
                (
                    NotPayable.SELF_BILLING_OUTDATED,
                    f"The self-billing agreement accepted is not the current version {current_self_billing!r}.",
                )
            )
        else:
            reasons.append((NotPayable.SELF_BILLING_NOT_ACCEPTED, "The self-billing agreement is not accepted."))
    return Payability(at, tuple(reasons))
