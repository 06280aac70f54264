"""The worker loop: one pass does every kind of work that is due; a pass that found nothing waits.

Work is claimed under leases in the database, so workers in several processes and machines share it
without a coordinator: the store-event applier is one lease (events apply one at a time, in arrival
order), each scheduled job's due moment is claimed by exactly one worker. A worker that dies loses
its leases when they expire; its uncommitted work rolls back with its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics, tracing
from app.db.repositories import webhooks as webhooks_repo
from app.db.repositories import worker as repo
from app.db.session import SessionFactory, unit_of_work
from app.domain import webhooks
from app.domain.clock import Clock
from app.settings import Settings
from app.worker import jobs
from app.worker.schema_gate import SchemaGate

log = logging.getLogger("app.worker")

APPLIER = "store_events"
Task = Callable[["Worker"], Awaitable[int]]
"""A kind of work beside the built-in ones: does what is due, returns how much it did (0: idle)."""
TASKS: list[Task] = []
ON_STOP: list[Callable[[Worker], Awaitable[None]]] = []
"""What a task kind gives back when its worker stops (an HTTP client)."""


class Worker:
    def __init__(self, factory: SessionFactory, clock: Clock, settings: Settings, *, name: str | None = None) -> None:
        self.factory = factory
        self.clock = clock
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = timedelta(seconds=settings.worker_lease_seconds)
        self._jobs_known = False
        self.stopping = asyncio.Event()
        self.schema = SchemaGate(clock, self.name)

    async def tick(self, *, scheduled: bool = True) -> int:
        """One pass over every kind of work; returns how much was done (0 when idle). Without
        `scheduled`, the scheduled jobs wait (a test that settles store events only). Nothing at all
        while the database's schema does not fit this build (`schema_gate`)."""
        if not await self.schema.open(self.reading):
            return 0
        done = await self.apply_store_events()
        if scheduled:
            done += await self.run_due_jobs()
        for task in TASKS:
            done += await task(self)
        return done

    async def apply_store_events(self) -> int:
        """One batch of accepted store events, in one transaction, under the applier's lease."""
        if not self.settings.apply_store_events:
            return 0
        async with self.reading() as session:  # an idle worker only reads: no write per poll
            if await webhooks_repo.newest_accepted_id(session) is None:
                return 0
        now = self.clock.now()
        with tracing.span("store_events.batch"):  # each event's own span inside, linked to its intake
            async with unit_of_work(self.factory) as session:
                if not await repo.take_lease(session, APPLIER, self.name, now, now + self.lease):
                    return 0
                outcomes = await webhooks.apply_accepted(session, now, limit=self.settings.worker_batch)
        for outcome, count in outcomes.items():  # counted once committed
            metrics.store_event(outcome, count)
        return sum(outcomes.values())

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session that only reads (on SQLite without the writer lock); its polls are not traced."""
        with tracing.untraced():
            async with self.factory() as session:
                await session.connection(execution_options={"sqlite_begin": "DEFERRED"})
                yield session

    async def run_due_jobs(self) -> int:
        now = self.clock.now()
        if not self._jobs_known:
            async with unit_of_work(self.factory) as session:
                await repo.ensure_jobs(session, [job.name for job in jobs.JOBS], now)
            self._jobs_known = True
        async with self.reading() as session:
            due = await repo.due_job_names(session, now)
        ran = 0
        for job in jobs.JOBS:
            if job.name not in due:
                continue
            async with unit_of_work(self.factory) as session:
                run = await repo.claim_due_job(session, job.name, now, now + job.every)
            if run is None:
                continue
            ran += 1
            counts: dict[str, Any] = {}
            error: str | None = None
            try:
                with tracing.span(f"job.{job.name}"):
                    counts = await job.run(self.factory, now)
            except Exception as exc:
                log.exception("job %s failed", job.name)
                error = f"{exc.__class__.__name__}: {exc}"
            metrics.job_run(job.name, "failed" if error else "ok")
            async with unit_of_work(self.factory) as session:
                await repo.finish_job(
                    session,
                    job.name,
                    run=run,
                    finished_at=self.clock.now(),
                    outcome="failed" if error else "ok",
                    counts=counts,
                    error=error,
                )
            if error is None and any(counts.values()):
                log.info("job %s: %s", job.name, counts)
        return ran

    async def run(self) -> None:
        """Work until `stopping` is set; on the way out, give back what this worker holds."""
        poll = self.settings.worker_poll_seconds
        failures = 0
        log.info("worker %s started", self.name)
        try:
            while not self.stopping.is_set():
                try:
                    done = await self.tick()
                    failures = 0
                except Exception as exc:
                    # The database may be away for a while: wait longer after each failed pass (up to
                    # a minute), and log the traceback once, not twice a second.
                    failures += 1
                    log.error("worker pass failed (%s in a row); trying again", failures, exc_info=failures == 1)
                    if failures > 1:
                        log.debug("worker pass failure: %s", exc)
                    done = 0
                if done == 0:
                    wait = min(poll * 2 ** min(failures, 10), 60.0) if failures else poll
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), timeout=wait)
        finally:
            await self.release()
            await self.close()
            log.info("worker %s stopped", self.name)

    async def close(self) -> None:
        """Let each kind of work give back what it holds outside the database."""
        for hook in ON_STOP:
            try:
                await hook(self)
            except Exception:
                log.warning("worker %s: a stop hook failed", self.name, exc_info=True)

    async def release(self) -> None:
        try:
            async with unit_of_work(self.factory) as session:
                await repo.release_lease(session, APPLIER, self.name)
        except Exception:  # noqa: BLE001 - the lease then simply expires
            log.warning("worker %s could not release its lease; it expires by itself", self.name)


async def drain(worker: Worker, *, scheduled: bool = True, max_passes: int = 1000) -> int:
    """Run passes until one finds nothing to do (tests call this instead of waiting)."""
    total = 0
    for _ in range(max_passes):
        done = await worker.tick(scheduled=scheduled)
        if done == 0:
            return total
        total += done
    raise RuntimeError(f"the worker was still busy after {max_passes} passes")
