"""SQL for the worker: leases (work one worker does at a time) and scheduled jobs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import dialect
from app.db.tables import ScheduledJob, WorkerLease


async def take_lease(session: AsyncSession, name: str, holder: str, now: datetime, until: datetime) -> bool:
    """Take or extend the lease `name` for `holder` until `until`; False while another holds it.

    Called at the start of the transaction doing the leased work: on Postgres the UPDATE locks the
    lease row until that transaction ends, so a worker whose lease expired meanwhile cannot take it
    over while the holder's work is still uncommitted (its UPDATE waits, then finds the lease renewed).
    """
    await session.execute(
        dialect.insert(session, WorkerLease)
        .values(name=name, holder=None, expires_at=None)
        .on_conflict_do_nothing(index_elements=[col(WorkerLease.name)])
    )
    result = await session.execute(
        update(WorkerLease)
        .where(
            col(WorkerLease.name) == name,
            or_(
                col(WorkerLease.holder).is_(None),
                col(WorkerLease.holder) == holder,
                col(WorkerLease.expires_at) < now,
            ),
        )
        .values(holder=holder, expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release_lease(session: AsyncSession, name: str, holder: str) -> None:
    await session.execute(
        update(WorkerLease)
        .where(col(WorkerLease.name) == name, col(WorkerLease.holder) == holder)
        .values(holder=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )


async def leases(session: AsyncSession) -> Sequence[WorkerLease]:
    return (await session.execute(select(WorkerLease).order_by(col(WorkerLease.name)))).scalars().all()


async def ensure_jobs(session: AsyncSession, names: Sequence[str], now: datetime) -> None:
    """A row per job, due at once the first time a worker sees it."""
    for name in names:
        await session.execute(
            dialect.insert(session, ScheduledJob)
            .values(name=name, next_run_at=now, last_counts={}, runs=0)
            .on_conflict_do_nothing(index_elements=[col(ScheduledJob.name)])
        )


async def due_job_names(session: AsyncSession, now: datetime) -> set[str]:
    stmt = select(col(ScheduledJob.name)).where(col(ScheduledJob.next_run_at) <= now)
    return set((await session.execute(stmt)).scalars().all())


async def claim_due_job(session: AsyncSession, name: str, now: datetime, next_run_at: datetime) -> int | None:
    """Claim the job's due moment: exactly one worker's UPDATE matches, and moves the moment on. The
    claim's run number (the job's `runs` after it), or None when another worker claimed the moment."""
    result = await session.execute(
        update(ScheduledJob)
        .where(col(ScheduledJob.name) == name, col(ScheduledJob.next_run_at) <= now)
        .values(
            next_run_at=next_run_at,
            last_started_at=now,
            runs=col(ScheduledJob.runs) + 1,
        )
        .returning(col(ScheduledJob.runs))
        .execution_options(synchronize_session=False)
    )
    run: int | None = result.scalar_one_or_none()
    return run


async def finish_job(
    session: AsyncSession,
    name: str,
    *,
    run: int,
    finished_at: datetime,
    outcome: str,
    counts: dict[str, Any],
    error: str | None,
    next_run_at: datetime | None = None,
) -> None:
    values: dict[str, Any] = {
        "last_finished_at": finished_at,
        "last_outcome": outcome,
        "last_counts": counts,
        "last_error": error[:2000] if error else None,
    }
    if next_run_at is not None:
        values["next_run_at"] = next_run_at
    # Only while this run is the job's latest: a run claimed earlier that finishes after a newer one
    # (runs of one job overlap when the clock jumps) must not pass its figures off as the newer run's.
    await session.execute(
        update(ScheduledJob)
        .where(col(ScheduledJob.name) == name, col(ScheduledJob.runs) == run)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def jobs(session: AsyncSession) -> Sequence[ScheduledJob]:
    return (await session.execute(select(ScheduledJob).order_by(col(ScheduledJob.name)))).scalars().all()
