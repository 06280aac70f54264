"""The worker applies nothing to a database whose schema this build does not fit.

Once `partners migrate` has run a migration that does not declare this build compatible (a contract
step), an old build's worker must not apply store events or run jobs with its old rules: it pauses,
says why once in its log, and looks again every `RECHECK` of the injected clock, so a rollback of
the database, or a migration that declares it compatible, lets it resume. A database behind the build
pauses it too (its code expects columns the schema has not got yet).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.compatibility import SchemaState, read_state
from app.domain.clock import Clock

log = logging.getLogger("app.worker")

RECHECK = timedelta(seconds=5)


class SchemaGate:
    def __init__(self, clock: Clock, name: str) -> None:
        self.clock = clock
        self.name = name
        self.state: SchemaState | None = None
        self.checked_at: datetime | None = None

    async def open(self, reading: Callable[[], AbstractAsyncContextManager[AsyncSession]]) -> bool:
        """Whether the worker may apply anything now (read again once `RECHECK` has passed)."""
        now = self.clock.now()
        if self.state is None or self.checked_at is None or not self.checked_at <= now < self.checked_at + RECHECK:
            async with reading() as session:
                connection = await session.connection()
                self.observe(await connection.run_sync(read_state))
            self.checked_at = now
        assert self.state is not None
        return self.state.ready

    def observe(self, state: SchemaState) -> None:
        """Log a change of state once: paused (with why) or resumed."""
        before, self.state = self.state, state
        if before is not None and (before.code, before.schema_revision) == (state.code, state.schema_revision):
            return
        if not state.ready:
            log.warning(
                "worker %s paused (%s): %s",
                self.name,
                state.code,
                state.explain(),
                extra={"schema_revision": state.schema_revision, "build_revision": state.build_revision},
            )
        elif before is not None and not before.ready:
            log.warning("worker %s resumed: %s", self.name, state.explain())
        elif state.ahead:
            log.info("worker %s: %s", self.name, state.explain())
