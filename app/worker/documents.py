"""Invoice documents, run by the worker: render the PDF/A-3 of each issued invoice and credit note.

Rendering is CPU work (laying out a page, subsetting fonts, embedding the XML): it runs in a pool of
processes (`PARTNERS_INVOICE_RENDER_PROCESSES`) while the worker's event loop goes on applying store
events. A pass starts a task of the worker's own that claims batches of documents (each in a
transaction of its own, skipping what other workers claimed), keeps the next batch queued in the pool
while one renders, and stores each batch as it is done, until nothing is due. A worker that dies
mid-batch leaves its claims to expire; another renders them again. A document that fails to render
keeps the error and is tried again a minute later.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import weakref
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from app.db.repositories import payouts as repo
from app.db.session import unit_of_work
from app.domain import invoice_document
from app.worker.runner import ON_STOP, TASKS, Worker

log = logging.getLogger("app.worker")
PER_PROCESS = 8
"""Documents claimed per pass and process of the pool."""
CLAIM = timedelta(minutes=5)
"""How long a claim lasts: far longer than a batch takes."""


@dataclass
class _State:
    pool: ProcessPoolExecutor | None = None
    running: asyncio.Task[int] | None = None


_states: weakref.WeakKeyDictionary[Worker, _State] = weakref.WeakKeyDictionary()


def _state(worker: Worker) -> _State:
    state = _states.get(worker)
    if state is None:
        state = _states[worker] = _State()
    return state


def _pool(worker: Worker, state: _State) -> ProcessPoolExecutor:
    if state.pool is None:
        # spawn, not fork: the worker's process holds threads (the database drivers') a fork would copy
        # in whatever state they were.
        state.pool = ProcessPoolExecutor(
            max_workers=worker.settings.invoice_render_processes, mp_context=multiprocessing.get_context("spawn")
        )
    return state.pool


async def render_documents(worker: Worker) -> int:
    """Start rendering what is due, unless this worker renders already: a task of its own claims batch
    after batch, keeping the next batch queued in the pool while one renders, until nothing is due.
    Returns 1 when it started one (0: nothing due, or rendering under way)."""
    if not worker.settings.render_invoice_documents:
        return 0
    state = _state(worker)
    if state.running is not None:
        if not state.running.done():
            return 0
        running, state.running = state.running, None
        running.result()  # a failure of the task itself is raised in the worker's pass, and logged there
    if not await _due(worker):
        return 0
    state.running = asyncio.create_task(_run(worker, _pool(worker, state)), name="invoice-documents")
    return 1


async def _due(worker: Worker) -> bool:
    async with worker.reading() as session:
        return await repo.any_document_due(session, worker.clock.now())


async def _claim(worker: Worker) -> list[tuple[int, invoice_document.Document]]:
    now = worker.clock.now()
    limit = PER_PROCESS * worker.settings.invoice_render_processes
    async with unit_of_work(worker.factory) as session:
        claimed = await repo.claim_documents(session, worker.name, now, now + CLAIM, limit)
        return [(row.id or 0, invoice_document.document(row, corrects)) for row, corrects in claimed]


async def _run(worker: Worker, pool: ProcessPoolExecutor) -> int:
    """Claim and render batches until none is due (or the worker stops); the next batch waits in the
    pool's queue while one renders, so the pool never idles between batches. Returns how many
    documents it handled."""
    total = 0
    rendering: asyncio.Task[int] | None = None
    while not worker.stopping.is_set():
        documents = await _claim(worker)
        if not documents:
            break
        following = asyncio.create_task(_render(worker, pool, documents))
        if rendering is not None:
            total += await rendering
        rendering = following
    if rendering is not None:
        total += await rendering
    return total


async def _render(
    worker: Worker, pool: ProcessPoolExecutor, documents: list[tuple[int, invoice_document.Document]]
) -> int:
    loop = asyncio.get_running_loop()
    made = await asyncio.gather(
        *(loop.run_in_executor(pool, invoice_document.render, doc) for _, doc in documents), return_exceptions=True
    )
    async with unit_of_work(worker.factory) as session:
        at = worker.clock.now()
        for (invoice_id, doc), pdf in zip(documents, made, strict=True):
            if isinstance(pdf, BaseException):
                log.error("invoice %s: rendering failed: %s", doc.number, pdf, exc_info=pdf)
                await repo.document_failed(
                    session,
                    invoice_id,
                    worker.name,
                    error=f"{pdf.__class__.__name__}: {pdf}",
                    retry_at=at + timedelta(minutes=1),
                )
            else:
                sha = hashlib.sha256(pdf).hexdigest()
                await repo.store_document(session, invoice_id, worker.name, pdf=pdf, sha256=sha, at=at)
    return len(documents)


async def settle(worker: Worker) -> int:
    """Render every document due and wait for it, whether or not this worker renders in its loop
    (tests call this; the worker loop never waits)."""
    state = _state(worker)
    total = 0
    if state.running is not None:
        total += await state.running
        state.running = None
    while await _due(worker):
        total += await _run(worker, _pool(worker, state))
    return total


async def close(worker: Worker) -> None:
    """Let the batches being rendered finish and be stored, then stop the pool."""
    state = _states.pop(worker, None)
    if state is None:
        return
    if state.running is not None:
        try:
            await state.running
        except Exception:  # their claims expire, and another worker renders them
            log.warning("worker %s: invoice documents being rendered were not stored", worker.name, exc_info=True)
    if state.pool is not None:
        state.pool.shutdown(wait=True, cancel_futures=True)


TASKS.append(render_documents)
ON_STOP.append(close)
