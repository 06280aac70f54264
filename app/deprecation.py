"""Deprecated routes announce themselves on every answer (docs/api-versioning.md).

Each deprecated operation has one entry in `DEPRECATED`: the day it was deprecated, the day after
which it may be removed (at least `MIN_NOTICE` later) and what replaces it. Its answers then carry
`Deprecation` (RFC 9745), `Sunset` (RFC 8594) and `Link` headers, and the OpenAPI document marks it
`deprecated` (a test checks the two agree).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime

from fastapi import Response

MIN_NOTICE = timedelta(days=182)
"""A deprecated route keeps working for at least six months after it is announced."""


@dataclass(frozen=True)
class Deprecation:
    since: date
    sunset: date
    successor: str
    """The path (and query) that replaces it."""

    def __post_init__(self) -> None:
        if self.sunset - self.since < MIN_NOTICE:
            raise ValueError(f"a sunset less than {MIN_NOTICE.days} days after the deprecation breaks the policy")

    def headers(self) -> dict[str, str]:
        since = datetime.combine(self.since, time.min, tzinfo=UTC)
        sunset = datetime.combine(self.sunset, time.min, tzinfo=UTC)
        return {
            "Deprecation": f"@{int(since.timestamp())}",
            "Sunset": format_datetime(sunset, usegmt=True),
            "Link": f'<{self.successor}>; rel="successor-version"',
        }


DEPRECATED: dict[str, Deprecation] = {
    "list_discount_mismatches": Deprecation(
        since=date(2026, 11, 30),
        sunset=date(2027, 6, 30),
        successor="/v1/order-flags?kind=discount_mismatch",
    ),
}
"""Deprecated operations by operation id."""


def announce(operation_id: str) -> Callable[[Response], Awaitable[None]]:
    """A route dependency that adds the deprecation headers of `operation_id` to every answer."""
    deprecation = DEPRECATED[operation_id]

    async def dependency(response: Response) -> None:
        response.headers.update(deprecation.headers())

    return dependency
