"""Integer money and points arithmetic (R11-R15). No floats."""

from __future__ import annotations

import calendar
from datetime import datetime


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
