"""Self-billed invoices: the VAT a partner's invoice carries, its lines and amounts, and the text a
transfer names its invoices with. Pure: facts in, values out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

EU = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT",
        "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip
"""The member states of the EU (ISO 3166-1 alpha-2; Greece as `GR`, as a payee's country is given)."""

SELF_BILLING_MENTION = (
    "Autofacturation / Self-billing: invoice issued by the buyer in the name and on behalf of the seller."
)
REVERSE_CHARGE_MENTION = "Autoliquidation / Reverse charge: VAT due by the buyer (Art. 196 Directive 2006/112/EC)."
OUTSIDE_EU_MENTION = "Outside the scope of EU VAT."
REMITTANCE_LENGTH = 140
"""The unstructured remittance text of a SEPA credit transfer holds 140 characters."""


class VatTreatment(StrEnum):
    DOMESTIC = "domestic"
    """Registered and established in the vendor's country: that country's rate."""
    REVERSE_CHARGE = "reverse_charge"
    """Registered in another EU member state: the buyer accounts for the VAT."""
    OUTSIDE_EU = "outside_eu"
    """Established outside the EU."""
    NOT_REGISTERED = "not_registered"
    """Not registered for VAT in the EU: no VAT, no mention."""


@dataclass(frozen=True)
class Vat:
    treatment: VatTreatment
    rate_bp: int | None
    """Basis points (2000: 20 %) when VAT is charged."""
    mention: str | None


class VatRateMissing(Exception):
    """The VAT table has no rate for the vendor's country."""


def vat(*, partner_country: str, vat_registered: bool, vendor_country: str, rates: Mapping[str, int]) -> Vat:
    """The VAT an invoice of this partner carries."""
    if partner_country not in EU:
        return Vat(VatTreatment.OUTSIDE_EU, None, OUTSIDE_EU_MENTION)
    if not vat_registered:
        return Vat(VatTreatment.NOT_REGISTERED, None, None)
    if partner_country == vendor_country:
        if vendor_country not in rates:
            raise VatRateMissing(vendor_country)
        return Vat(VatTreatment.DOMESTIC, rates[vendor_country], None)
    return Vat(VatTreatment.REVERSE_CHARGE, None, REVERSE_CHARGE_MENTION)


def vat_amount(net: int, rate_bp: int | None) -> int:
    """VAT on `net` minor units, rounded half up to the minor unit."""
    if rate_bp is None:
        return 0
    return (net * rate_bp + 5_000) // 10_000


@dataclass(frozen=True)
class InvoiceLine:
    rule: str | None
    """The commission rule (`R11`...); null for the balance carried from the previous statement."""
    description: str
    amount: int


def lines(entries: Iterable[tuple[str, int]], carried: int, describe: Mapping[str, str]) -> list[InvoiceLine]:
    """One line per kind of commission (the statement's entries summed by rule, in rule order), then the
    negative balance carried from the previous statement, if any."""
    by_rule: dict[str, int] = defaultdict(int)
    for rule, amount in entries:
        by_rule[rule] += amount
    made = [
        InvoiceLine(rule, describe.get(rule, f"Commission ({rule})"), amount)
        for rule, amount in sorted(by_rule.items())
    ]
    if carried:
        made.append(InvoiceLine(None, "Balance carried from the previous statement", carried))
    return made


def remittance(run_reference: str, numbers: Sequence[str]) -> str:
    """The invoice numbers a transfer pays, or, when they do not fit in 140 characters, a reference to
    the run's statement list."""
    text = "Invoices " + ", ".join(numbers) if len(numbers) > 1 else f"Invoice {numbers[0]}"
    if len(text) <= REMITTANCE_LENGTH:
        return text
    return f"{len(numbers)} invoices, see statement list of payout run {run_reference}"[:REMITTANCE_LENGTH]
