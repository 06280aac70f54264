"""The program's scheduled jobs. Each is idempotent (it does what is due and records it), so a run
that dies half-way is completed by the next one; the worker claims each due moment for one worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import idempotency as idempotency_repo
from app.db.session import SessionFactory, unit_of_work
from app.domain import leads, levels, registrations, statements, webhooks
from app.domain.context import Caller, Context

Counts = dict[str, int]
BATCH = 500
IDEMPOTENCY_KEPT_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    description: str
    run: Callable[[SessionFactory, datetime], Awaitable[Counts]]


async def _batches(factory: SessionFactory, step: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Run `step` in one transaction per batch until a batch does less than a full batch of work."""
    total = 0
    while True:
        async with unit_of_work(factory) as session:
            done = await step(session)
        total += done
        if done < BATCH:
            return total


async def lapses_due(factory: SessionFactory, now: datetime) -> Counts:
    # R10: lapses reported early and parked until their moment, then licences overdue without any event.
    return {"lapsed": await _batches(factory, lambda s: webhooks.apply_due_lapses(s, now, batch=BATCH))}


async def registration_windows(factory: SessionFactory, now: datetime) -> Counts:
    expiring = await _batches(factory, lambda s: registrations.notify_expiring(s, now, limit=BATCH))
    expired = await _batches(factory, lambda s: registrations.expire_due(s, now, limit=BATCH))
    return {"expiring_notices": expiring, "expired": expired}


async def lead_deadlines(factory: SessionFactory, now: datetime) -> Counts:
    async with unit_of_work(factory) as session:
        expired = await leads.expire_due(session, Context(caller=Caller(kind="system"), now=now))
    return {"offers_expired": expired}


async def overdue_statements(factory: SessionFactory, now: datetime) -> Counts:
    return {"overdue_notices": await _batches(factory, lambda s: statements.notify_overdue(s, now, limit=BATCH))}


async def prune_idempotency(factory: SessionFactory, now: datetime) -> Counts:
    async with unit_of_work(factory) as session:
        pruned = await idempotency_repo.prune(session, before=now - IDEMPOTENCY_KEPT_FOR)
    return {"pruned": pruned}


async def terms_taking_effect(factory: SessionFactory, now: datetime) -> Counts:
    async with unit_of_work(factory) as session:
        version = await levels.terms_to_take_effect(session, now)
    if version is None:
        return {"partners_recomputed": 0, "levels_changed": 0}
    partners = changed = 0
    after = None
    while True:
        async with unit_of_work(factory) as session:
            read, moved, after = await levels.recompute(session, version, now, after=after, limit=BATCH)
            partners, changed = partners + read, changed + moved
            if read < BATCH:
                levels.took_effect(session, version, now, partners=partners, changed=changed)
                break
    return {"terms_version": version.version, "partners_recomputed": partners, "levels_changed": changed}


JOBS: list[Job] = [
    Job(
        "terms_taking_effect",
        timedelta(minutes=1),
        "Recompute levels when a terms version takes effect (R03).",
        terms_taking_effect,
    ),
    Job(
        "lapses_due",
        timedelta(minutes=5),
        "Apply lapses parked until their moment and lapse licences overdue past their grace period (R10).",
        lapses_due,
    ),
    Job(
        "registration_windows",
        timedelta(minutes=5),
        "Notify registrations 7 days before their window ends; expire ended ones (R07).",
        registration_windows,
    ),
    Job(
        "lead_deadlines",
        timedelta(minutes=1),
        "Expire lead offers past their deadline and pass them on (R19).",
        lead_deadlines,
    ),
    Job(
        "overdue_statements",
        timedelta(hours=1),
        "Flag statements, drafts and approved ones, unpaid after their payout date (R16).",
        overdue_statements,
    ),
    Job(
        "prune_idempotency",
        timedelta(hours=1),
        "Delete Idempotency-Key records older than 24 hours.",
        prune_idempotency,
    ),
]
