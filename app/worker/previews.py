"""Terms-change previews, computed by the worker (`app.domain.terms_preview`): a task of the worker's
own computes the oldest waiting preview, so the store-event applier and the other work of each pass
never wait for one (a large program's preview reads and replays its whole window)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import timedelta

from app.domain import terms_preview
from app.worker.runner import ON_STOP, TASKS, Worker

log = logging.getLogger("app.worker")

LEASE = timedelta(minutes=2)
"""How long a preview stays claimed between two progress records (each page of orders renews it)."""
_running: weakref.WeakKeyDictionary[Worker, asyncio.Task[int]] = weakref.WeakKeyDictionary()


async def compute_previews(worker: Worker) -> int:
    """Start computing the oldest waiting preview, unless this worker computes one already; 1 when it
    started one."""
    running = _running.get(worker)
    if running is not None:
        if not running.done():
            return 0
        del _running[worker]
        running.result()  # a failure of the task itself is raised in the worker's pass, and logged there
    async with worker.reading() as session:
        if not await terms_preview.waiting(session, worker.clock.now()):
            return 0
    _running[worker] = asyncio.create_task(_compute(worker), name="terms-preview")
    return 1


async def _compute(worker: Worker) -> int:
    return await terms_preview.run_next(worker.factory, worker.name, worker.clock.now, max(worker.lease, LEASE))


async def settle(worker: Worker) -> int:
    """Compute every waiting preview and wait for it (tests call this; the worker loop never waits)."""
    total = 0
    running = _running.pop(worker, None)
    if running is not None:
        total += await running
    while True:
        done = await _compute(worker)
        if not done:
            return total
        total += done


async def close(worker: Worker) -> None:
    """A preview being computed is given up: its claim expires and a worker computes it again."""
    running = _running.pop(worker, None)
    if running is not None and not running.done():
        running.cancel()
        try:
            await running
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - whatever it was, its claim expires
            log.info("worker %s: the terms preview being computed is left to another worker", worker.name)


TASKS.append(compute_previews)
ON_STOP.append(close)
