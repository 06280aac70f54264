"""An Idempotency-Key whose request died is taken over after the lease; a slow original and the
request that took its key over never both apply."""

from __future__ import annotations

import asyncio
import hashlib
import json

import asyncpg
import pytest

from app.db.repositories import idempotency as repo
from app.db.tables import IdempotencyRecord
from tests.conftest import Api
from tests.program import Customer, Program, line

BODY = {"kind": "money", "amount": 500, "currency": "EUR", "reason": "goodwill"}


async def _partner_with_a_ledger(program: Program) -> tuple[str, str]:
    p = await program.partner("2026-01-01T09:00:00Z")
    c = Customer.new()
    await program.register(p, c, at="2026-01-02T09:00:00Z")
    await program.order(c, [line("desktop", 1, 10000)], placed_at="2026-02-01T10:00:00Z")
    return p


async def _adjustments(program: Program, p: tuple[str, str]) -> list[int]:
    return [e["amount"] for e in await program.money(p) if e["rule"] == "ADJ"]


async def test_a_claim_past_its_lease_is_taken_over_and_the_original_cannot_complete(api: Api) -> None:
    program = Program(api)
    p = await _partner_with_a_ledger(program)
    url = f"/v1/partners/{p[0]}/adjustments"
    raw = json.dumps(BODY).encode()
    digest = hashlib.sha256(b"POST " + url.encode() + b"?\n" + raw).hexdigest()
    app = api.client._transport.app  # type: ignore[attr-defined]
    admin_key_id = (await api.client.get("/v1/api-keys", headers=api.admin)).json()["items"][0]["id"]
    actor = f"admin:{admin_key_id}"
    # A worker claimed the key, then was killed: its claim stays behind.
    async with app.state.session_factory.begin() as session:
        await repo.claim(
            session,
            IdempotencyRecord(
                actor=actor,
                key="adj-dead",
                method="POST",
                path=url,
                request_hash=digest,
                status="in_flight",
                created_at=api.clock.now(),
                claim_token="dead-worker",
                claimed_at=api.clock.now(),
            ),
        )
    headers = {**api.admin, "Idempotency-Key": "adj-dead", "content-type": "application/json"}
    api.clock.advance(seconds=59)
    busy = await api.client.post(url, content=raw, headers=headers)
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_in_flight"
    api.clock.advance(seconds=1)  # the lease (60 s) has passed
    taken = await api.client.post(url, content=raw, headers=headers)
    assert taken.status_code == 201, taken.text
    replay = await api.client.post(url, content=raw, headers=headers)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == taken.json()
    # The original, had it lived on, could no longer store its answer (and so commit its work).
    async with app.state.session_factory.begin() as session:
        assert await repo.complete(session, actor, "adj-dead", "dead-worker", 201, {}) is False
    assert await _adjustments(program, p) == [500]


async def _wait_for(connection: asyncpg.Connection, sql: str, expected: int) -> None:
    for _ in range(1000):
        if await connection.fetchval(sql) >= expected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached {expected}: {sql}")


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_slow_original_and_its_taker_never_both_apply(
    live_api: Api, backend: str, committing_database_url: str
) -> None:
    """The original waits on a row lock past its lease; a retry takes the key over and waits too.
    Whichever gets the lock first, only the taker's adjustment is committed: one entry, never two."""
    program = Program(live_api)
    p = await _partner_with_a_ledger(program)
    url = f"/v1/partners/{p[0]}/adjustments"
    headers = {**live_api.admin, "Idempotency-Key": "adj-slow"}
    dsn = committing_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    blocker = await asyncpg.connect(dsn)
    watcher = await asyncpg.connect(dsn)
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("SELECT 1 FROM partner_balances WHERE partner_id = $1 FOR UPDATE", p[0])
        original = asyncio.create_task(live_api.client.post(url, json=BODY, headers=headers))
        await _wait_for(watcher, waiting, 1)
        live_api.clock.advance(seconds=61)
        taker = asyncio.create_task(live_api.client.post(url, json=BODY, headers=headers))
        await _wait_for(watcher, waiting, 2)
        await transaction.rollback()
        first, second = await asyncio.gather(original, taker)
    finally:
        await blocker.close()
        await watcher.close()
    assert first.status_code == 409 and first.json()["code"] == "idempotency_claim_lost", first.text
    assert second.status_code == 201, second.text
    assert await _adjustments(program, p) == [500]
    again = await live_api.client.post(url, json=BODY, headers=headers)
    assert again.status_code == 201 and again.json() == second.json()
