"""Program-wide switches and the shared rate limits."""

from __future__ import annotations

import hashlib
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
    """Count one request of `client` in a fixed window; refuse it past `limit`."""
    epoch = int(now.timestamp())
    window_start = epoch - epoch % window_seconds
    window_end = datetime.fromtimestamp(window_start + window_seconds, UTC)
    # Hash the address: the table then holds no personal data, and keys keep a fixed length.
    client_hash = hashlib.sha256(client.encode()).hexdigest()[:32]
    hits = await repo.hit(session, f"{scope}:{client_hash}:{window_start}", window_end, now)
    if hits > limit:
        retry_after = max(1, int((window_end - now) / timedelta(seconds=1)))
        raise RateLimited(
            f"Too many {scope} requests from this address; try again in {retry_after} seconds.",
            retry_after=retry_after,
        )
