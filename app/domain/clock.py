"""The one source of "now". Tests replace it (or move it with time-machine)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""The moments the service accepts from outside, `EARLIEST` included and `LATEST` excluded: far
enough from the ends of `datetime` that every window the rules add (days, months, a year) stays
representable on both databases."""


def supported(value: datetime) -> datetime:
    """`value` in UTC; raises ValueError (a validation error naming the field) outside the range."""
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of the supported range (1900-01-01 to 8999-12-31)") from exc
    if not EARLIEST <= in_utc < LATEST:
        raise ValueError("is out of the supported range (1900-01-01 to 8999-12-31)")
    return in_utc


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved; for tests and replays."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at
