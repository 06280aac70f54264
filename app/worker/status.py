"""What the worker is doing: its scheduled jobs and the store-event applier's backlog (GET /v1/jobs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.compatibility import SchemaState, read_state
from app.db.repositories import webhooks as webhooks_repo
from app.db.repositories import worker as repo
from app.db.tables import ScheduledJob
from app.worker import jobs
from app.worker.runner import APPLIER


@dataclass(frozen=True)
class Applier:
    accepted: int
    oldest_accepted_at: datetime | None
    holder: str | None
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class Status:
    jobs: list[tuple[ScheduledJob, jobs.Job]]
    applier: Applier
    schema: SchemaState
    """Whether this build's workers may apply anything (they pause while it is not ready)."""


async def read(session: AsyncSession) -> Status:
    rows = {row.name: row for row in await repo.jobs(session)}
    leases = {lease.name: lease for lease in await repo.leases(session)}
    accepted, oldest = await webhooks_repo.backlog(session)
    lease = leases.get(APPLIER)
    schema = await (await session.connection()).run_sync(read_state)
    return Status(
        jobs=[(rows[job.name], job) for job in jobs.JOBS if job.name in rows],
        applier=Applier(
            accepted=accepted,
            oldest_accepted_at=oldest,
            holder=lease.holder if lease else None,
            lease_expires_at=lease.expires_at if lease else None,
        ),
        schema=schema,
    )
