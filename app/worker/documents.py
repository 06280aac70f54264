"""Invoice documents, run by the worker: render the PDF/A-3 of each issued invoice and credit note.

Rendering is CPU work (laying out a page, subsetting fonts, embedding the XML): it runs in a pool of
processes (`PARTNERS_INVOICE_RENDER_PROCESSES`) while the worker's event loop goes on applying store
events. A pass claims a batch of documents (in a transaction of its own, skipping what other
workers claimed), hands it to the pool, and returns at once; a later pass finds the batch done and
stores it. A worker that dies mid-batch leaves its claims to expire; another renders them again. A
document that fails to render keeps the error and is tried again after a pause that grows.
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
    batch: asyncio.Task[int] | None = None


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
    """Store the batch the pool finished, if any; then claim and start the next. Returns how many
    documents it claimed or stored (0: nothing to do, or a batch still rendering)."""
    if not worker.settings.render_invoice_documents:
        return 0
    return await _step(worker)


async def _step(worker: Worker) -> int:
    state = _state(worker)
    stored = 0
    if state.batch is not None:
        if not state.batch.done():
            return 0
        batch, state.batch = state.batch, None
        stored = batch.result()
    now = worker.clock.now()
    async with worker.reading() as session:
        if not await repo.any_document_due(session, now):
            return stored
    limit = PER_PROCESS * worker.settings.invoice_render_processes
    async with unit_of_work(worker.factory) as session:
        claimed = await repo.claim_documents(session, worker.name, now, now + CLAIM, limit)
        documents = [(row.id or 0, invoice_document.document(row, corrects)) for row, corrects in claimed]
    if not documents:
        return stored
    state.batch = asyncio.create_task(_render(worker, _pool(worker, state), documents), name="invoice-documents")
    return stored + len(documents)


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
    """Render every document due, waiting for each batch, whether or not this worker renders in its
    loop (tests call this; the worker loop never waits)."""
    total = 0
    while True:
        done = await _step(worker)
        state = _state(worker)
        if state.batch is not None:
            total += await state.batch
            state.batch = None
        elif done == 0:
            return total


async def close(worker: Worker) -> None:
    """Let a batch being rendered finish and be stored, then stop the pool."""
    state = _states.pop(worker, None)
    if state is None:
        return
    if state.batch is not None:
        try:
            await state.batch
        except Exception:
            log.warning("worker %s: a batch of invoice documents was not stored", worker.name, exc_info=True)
    if state.pool is not None:
        state.pool.shutdown(wait=True, cancel_futures=True)


TASKS.append(render_documents)
ON_STOP.append(close)
