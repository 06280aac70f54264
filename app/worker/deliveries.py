"""Outbound webhooks, run by the worker: fan new domain events out to subscriptions, then send what
is due. No transaction is open while a target is called: claim and commit, call, then record the
outcome in a new transaction. A worker that dies mid-call leaves its claim to expire; another worker
then sends the delivery again, with the same `webhook-id` (at least once)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from app import metrics, tracing
from app.db.repositories import worker as leases
from app.db.session import unit_of_work
from app.domain import outbound, subscriptions
from app.worker.runner import ON_STOP, TASKS, Worker

log = logging.getLogger("app.worker")
BATCH = 50
"""Deliveries claimed and sent (concurrently) per pass."""


@dataclass
class _State:
    holes: subscriptions.Holes = field(default_factory=subscriptions.Holes)
    http: httpx.AsyncClient | None = None


_states: weakref.WeakKeyDictionary[Worker, _State] = weakref.WeakKeyDictionary()


def _state(worker: Worker) -> _State:
    state = _states.get(worker)
    if state is None:
        state = _states[worker] = _State()
    return state


async def fan_out(worker: Worker) -> int:
    async with worker.reading() as session:  # an idle worker only reads
        if not await subscriptions.fan_out_due(session):
            return 0
    now = worker.clock.now()
    wall = asyncio.get_running_loop().time()
    with tracing.span("domain_events.fan_out"):
        async with unit_of_work(worker.factory) as session:
            if not await leases.take_lease(session, subscriptions.FANOUT, worker.name, now, now + worker.lease):
                return 0
            return await subscriptions.fan_out(session, now, _state(worker).holes, wall)


async def send_due(worker: Worker) -> int:
    now = worker.clock.now()
    async with worker.reading() as session:
        if not await subscriptions.any_due(session, now):
            return 0
    with tracing.span("webhook_deliveries.send"):  # one span per delivery inside, its POST's below it
        return await _send_due(worker, now)


async def _send_due(worker: Worker, now: datetime) -> int:
    async with unit_of_work(worker.factory) as session:
        calls = await subscriptions.claim(session, worker.settings, now, worker=worker.name, limit=BATCH)
    if not calls:
        return 0
    state = _state(worker)
    if state.http is None:
        state.http = outbound.client()
    http = state.http
    allow_private = worker.settings.allow_private_targets

    async def call(one: subscriptions.Call) -> outbound.Outcome:
        if not one.secrets:  # never sent unsigned
            return outbound.Outcome(None, 0, "not sent: the secret cannot be opened with PARTNERS_SECRETS_KEY", None)
        headers = subscriptions.headers(one, worker.clock.now())
        with tracing.span(
            "webhook_delivery.send", {"webhook_delivery.id": one.delivery_id, "webhook.id": one.message_id}
        ) as span:
            outcome = await outbound.post(
                http, one.url, headers=headers, body=one.body.encode(), allow_private=allow_private
            )
            span.set_attribute("webhook_delivery.delivered", outcome.delivered)
            return outcome

    outcomes = await asyncio.gather(*(call(one) for one in calls))
    settled = []
    async with unit_of_work(worker.factory) as session:
        at = worker.clock.now()
        for one, outcome in zip(calls, outcomes, strict=True):
            settled.append(await subscriptions.record(session, one, outcome, at=at, worker=worker.name))
    for how in settled:  # counted once committed
        if how is not None:
            metrics.delivery(how)
    return len(calls)


async def close(worker: Worker) -> None:
    """Give back the fan-out's lease and close the worker's HTTP client (when it stops)."""
    try:
        async with unit_of_work(worker.factory) as session:
            await leases.release_lease(session, subscriptions.FANOUT, worker.name)
    except Exception:  # noqa: BLE001 - the lease then simply expires
        log.warning("worker %s could not release the fan-out lease; it expires by itself", worker.name)
    state = _states.pop(worker, None)
    if state is not None and state.http is not None:
        await state.http.aclose()


TASKS.extend([fan_out, send_due])
ON_STOP.append(close)
