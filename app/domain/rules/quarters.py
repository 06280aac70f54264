"""R16: calendar quarters in the program time zone, and their payout dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

_QUARTER = re.compile(r"^((?:19|2\d)\d\d)-Q([1-4])$")


@dataclass(frozen=True, order=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _QUARTER.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a quarter like 2026-Q1")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime, zone: ZoneInfo) -> Quarter:
        """The quarter `moment` falls in, counted in the program's time zone."""
        local = moment.astimezone(zone)
        return cls(local.year, (local.month - 1) // 3 + 1)

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"

    def start(self, zone: ZoneInfo) -> datetime:
        return datetime(self.year, 3 * self.number - 2, 1, tzinfo=zone).astimezone(UTC)

    def end(self, zone: ZoneInfo) -> datetime:
        """The first instant after the quarter."""
        return self.next().start(zone)

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)

    def payout_date(self) -> date:
        """Paid on the 25th of the month after the quarter: 25 Apr, 25 Jul, 25 Oct, 25 Jan."""
        following = self.next()
        return date(following.year, 3 * following.number - 2, 25)
