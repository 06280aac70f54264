"""Reactions to what a use case recorded, run by the worker after it committed: the use case changes
its own state and leaves to these what follows from it elsewhere (house style, "Reactions, events
and the worker"). Each finds its work from the state it reacts to, so it is idempotent and safe from
several workers at once."""

from __future__ import annotations

from app import tracing
from app.db.session import unit_of_work
from app.domain import leads
from app.domain.context import Caller, Context
from app.worker.runner import TASKS, Worker

BATCH = 100
"""Offers passed on per transaction."""


async def pass_on_offers_of_inactive_partners(worker: Worker) -> int:
    """R04: a suspended or terminated partner's open lead offers pass to the next partner."""
    async with worker.reading() as session:  # an idle worker only reads
        if not await leads.any_offer_of_inactive_partner(session):
            return 0
    with tracing.span("lead_offers.pass_on"):
        async with unit_of_work(worker.factory) as session:
            ctx = Context(caller=Caller(kind="system"), now=worker.clock.now())
            return await leads.pass_on_offers_of_inactive_partners(session, ctx, limit=BATCH)


TASKS.append(pass_on_offers_of_inactive_partners)
