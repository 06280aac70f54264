"""Program-wide switches and the shared rate limits."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import program as repo
from app.db.tables import ProgramSettings
from app.domain import audit
from app.domain.context import Context
from app.domain.errors import RateLimited


async def settings(session: AsyncSession) -> ProgramSettings:
    """The program settings in force."""
    return await repo.settings(session)


async def update_settings(session: AsyncSession, ctx: Context, *, auto_approve: bool | None) -> ProgramSettings:
    """Change program settings; each change is audited."""
    row = await repo.settings(session, for_update=True)
    before = audit.snapshot(row, ("auto_approve",))
    if auto_approve is not None:
        row.auto_approve = auto_approve
    after = audit.snapshot(row, ("auto_approve",))
    if after != before:
        row.updated_at = ctx.now
        await session.flush()
        audit.record(
            session,
            ctx,
            action="program_settings.updated",
            object_type="program_settings",
            object_id=1,
            before=before,
            after=after,
        )
    return row


async def take_token(
    session: AsyncSession,
    *,
    scope: str,
    client: str,
    now: datetime,
    limit: int,
    window_seconds: int,
) -> None:
    """Admit one request of `client` if fewer than `limit` were admitted in the `window_seconds`
    before it (a sliding window: no clock-aligned boundary across which twice the limit passes);
    refuse it otherwise, saying when the next one will be admitted."""
    # Hash the address: the table then holds no personal data, and keys keep a fixed length.
    client_hash = hashlib.sha256(client.encode()).hexdigest()[:32]
    window = timedelta(seconds=window_seconds)
    next_admitted = await repo.admit(session, f"{scope}:{client_hash}", now=now, window=window, limit=limit)
    if next_admitted is not None:
        retry_after = max(1, math.ceil((next_admitted - now) / timedelta(seconds=1)))
        raise RateLimited(
            f"Too many {scope} requests from this address; try again in {retry_after} seconds.",
            retry_after=retry_after,
        )


FAILED_AUTH_WINDOW_SECONDS = 60
REFUSAL_HISTORY = timedelta(days=30)
"""How long the daily counts of refused authentications are kept for the overview."""


class AuthThrottle:
    """This worker's memory of client addresses past the failed-authentication limit, until their
    window ends. The count itself is in the shared rate-limit store; the memory lets a throttled
    address be refused before its key is even looked at (a right guess must look like a wrong
    one), at no cost to the requests of everyone else."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}

    def retry_after(self, client: str, now: datetime) -> int | None:
        until = self._until.get(client)
        if until is None:
            return None
        if until <= now:
            del self._until[client]
            return None
        return max(1, int((until - now) / timedelta(seconds=1)))

    def block(self, client: str, until: datetime, now: datetime) -> None:
        if len(self._until) >= self.MAX_ENTRIES:
            self._until = {c: u for c, u in self._until.items() if u > now}
        self._until[client] = until


async def _count_refusal(session: AsyncSession, kind: str, now: datetime) -> None:
    day = now.date().isoformat()
    expires = datetime(now.year, now.month, now.day, tzinfo=UTC) + REFUSAL_HISTORY + timedelta(days=1)
    await repo.hit(session, f"auth_{kind}:{day}", expires, now)


async def failed_authentication(
    session: AsyncSession, throttle: AuthThrottle, *, client: str, now: datetime, limit: int
) -> RateLimited | None:
    """Count a refused key (or none) of `client`. Past `limit` in the minute: the refusal to raise
    (429) once this count is committed, and the address is throttled until the minute ends."""
    await _count_refusal(session, "failed", now)
    try:
        await take_token(
            session,
            scope="failed-authentication",
            client=client,
            now=now,
            limit=limit,
            window_seconds=FAILED_AUTH_WINDOW_SECONDS,
        )
    except RateLimited as refused:
        throttle.block(client, now + timedelta(seconds=refused.retry_after), now)
        await _count_refusal(session, "throttled", now)
        return _auth_rate_limited(refused.retry_after)
    return None


async def throttled_authentication(session: AsyncSession, *, retry_after: int, now: datetime) -> RateLimited:
    """Count a request refused because its address is throttled; the refusal to raise."""
    await _count_refusal(session, "throttled", now)
    return _auth_rate_limited(retry_after)


def _auth_rate_limited(retry_after: int) -> RateLimited:
    return RateLimited(
        f"Too many requests with a wrong or missing API key from this address; try again in {retry_after} seconds.",
        retry_after=retry_after,
        keep_writes=True,  # the count of refusals
    )


async def authentication_refusals(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Refused authentications over the last 30 days: `failed` (bad or missing key) and
    `throttled` (429 to an address past the limit)."""
    since = (now - REFUSAL_HISTORY).date().isoformat()
    counts = await repo.counts_by_prefix(session, ("auth_failed:", "auth_throttled:"))
    totals = {"failed": 0, "throttled": 0}
    for key, hits in counts.items():
        kind, _, day = key.partition(":")
        if day >= since:
            totals[kind.removeprefix("auth_")] += hits
    return totals
