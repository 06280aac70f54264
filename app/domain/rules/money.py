"""Integer money and points arithmetic (R11-R15). No floats."""

from __future__ import annotations

import calendar
from datetime import datetime

import pycountry

NOT_MONEY = frozenset(
    {
        # precious metals
        "XAU",
        "XAG",
        "XPT",
        "XPD",
        # bond-market units, the IMF's special drawing right and other units of account
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XDR",
        "XSU",
        "XUA",
        "XAD",
        # funds codes: indexed units and settlement variants of a country's currency
        "BOV",
        "CHE",
        "CHW",
        "CLF",
        "COU",
        "MXV",
        "USN",
        "UYI",
        "UYW",
        # the code for testing, and "no currency"
        "XTS",
        "XXX",
    }
)
"""R23: ISO 4217 codes that are not money a customer pays with (funds, metals, units, test codes)."""

MONEY_CURRENCIES = tuple(sorted(c.alpha_3 for c in pycountry.currencies if c.alpha_3 not in NOT_MONEY))
"""R23: the ISO 4217 codes of money, the only currencies an order, a quote or an adjustment may name."""


def is_money(code: str) -> bool:
    """R23: an ISO 4217 code of money: one that exists and is not a fund, metal, unit or test code."""
    return code in _MONEY


_MONEY = frozenset(MONEY_CURRENCIES)


def half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, in integers."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def commission(paid: int, rate_bp: int) -> int:
    """R15: a line's commission, rounded half-up to the minor unit."""
    return half_up_div(paid * rate_bp, 10_000)


def refund_commission_target(commission_total: int, refunded: int, paid: int) -> int:
    """R14: commission reversed after refunds totalling `refunded` of a line that paid `paid`."""
    if paid <= 0:
        return commission_total
    return half_up_div(commission_total * refunded, paid)


def refund_licences_target(quantity: int, refunded: int, paid: int) -> int:
    """R14: licences whose points are reversed after refunds totalling `refunded`: floor(r*q/p)."""
    if paid <= 0:
        return quantity
    return (refunded * quantity) // paid


def add_months_clamped(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months in its own time zone, the day clamped to the month's end
    (29 Feb 2028 + 12 months -> 28 Feb 2029)."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
