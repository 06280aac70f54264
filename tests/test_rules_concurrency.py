"""The rules engine under truly concurrent requests, on a database that really commits."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from app.domain.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Api
from tests.program import Customer, Program, line, order_event, refund_event, t

pytestmark = pytest.mark.slow


async def _post_signed(program: Program, event: dict, webhook_id: str):  # type: ignore[no-untyped-def]
    body = json.dumps(event).encode()
    timestamp = str(int(program.api.clock.now().timestamp()))
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(WEBHOOK_SECRET, webhook_id, timestamp, body),
        "content-type": "application/json",
    }
    return await program.client.post("/v1/webhooks/store", content=body, headers=headers)


async def _outcomes(program: Program, event_ids: set[int]) -> dict[int, str]:
    """Each stored event's status, read as the store reads it."""
    outcomes = {}
    for event_id in sorted(event_ids):
        response = await program.client.get(f"/v1/webhook-events/{event_id}", headers=program.api.admin)
        assert response.status_code == 200, response.text
        outcomes[event_id] = response.json()["status"]
    return outcomes


async def test_e7_fifty_deliveries_25_at_a_time_make_one_set_of_entries(live_api: Api) -> None:
    program = Program(live_api)
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    event = order_event(
        c, [line("desktop", 2, 96000), line("server-business", 1, 150000)], placed_at=t("2026-02-01T10:00:00Z")
    )
    responses = []
    for wave in range(2):
        # Half the deliveries reuse one webhook id; the others bring the same order under new ids.
        responses += await asyncio.gather(
            *(_post_signed(program, event, "msg_e7" if i % 2 else f"msg_e7_{wave}_{i}") for i in range(25))
        )
    # Intake: the first delivery of each webhook id is accepted, the same id again is a duplicate.
    assert Counter((r.status_code, r.json()["status"]) for r in responses) == {
        (202, "accepted"): 1 + 26,
        (200, "duplicate"): 23,
    }
    assert len({r.json()["event_id"] for r in responses if r.json()["status"] == "duplicate"}) == 1
    await live_api.drain(scheduled=False)
    # Application: one stored event applied the order; the 26 others say it was recorded before.
    outcomes = await _outcomes(program, {r.json()["event_id"] for r in responses})
    assert Counter(outcomes.values()) == {"applied": 1, "duplicate": 26}
    assert await program.total_points(p) == 6
    assert await program.total_money(p) == 19200 + 30000
    assert (await program.status(p))["active_points"] == 6


async def test_twenty_orders_for_one_partner_at_once_credit_exact_points(live_api: Api) -> None:
    program = Program(live_api)
    p = await program.partner()
    customers = [Customer.new() for _ in range(20)]
    for c in customers:
        await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    events = [
        order_event(c, [line("server-enterprise", 1 + i % 3, 10000)], placed_at=t("2026-02-01T10:00:00Z"))
        for i, c in enumerate(customers)
    ]
    responses = await asyncio.gather(*(_post_signed(program, e, f"msg_many_{i}") for i, e in enumerate(events)))
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses if r.status_code != 202]
    await live_api.drain(scheduled=False)
    assert set((await _outcomes(program, {r.json()["event_id"] for r in responses})).values()) == {"applied"}
    expected = sum(5 * (1 + i % 3) for i in range(20))
    assert await program.total_points(p) == expected
    status = await program.status(p)
    assert status["active_points"] == expected and status["level"] == "gold"
    history = (await program.client.get(f"/v1/partners/{p[0]}/level-history", headers=live_api.admin)).json()["items"]
    assert [h["to_level"] for h in history] == ["silver", "gold"]


async def test_two_partners_registering_one_customer_at_once_exactly_one_wins(live_api: Api) -> None:
    program = Program(live_api)
    partners = [await program.partner() for _ in range(6)]
    program.at("2026-01-10T09:00:00Z")
    for round_ in range(3):
        c = Customer.new(f"Race{round_}")
        responses = await asyncio.gather(*(program.register(p, c) for p in partners))
        codes = Counter(r.status_code for r in responses)
        assert codes == {201: 1, 409: 5}, [r.text for r in responses]
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"registered_by_another_partner"}
    refusals = (await program.client.get("/v1/registration-refusals?limit=200", headers=live_api.admin)).json()
    assert len(refusals["items"]) == 15


async def test_refund_and_order_racing_end_as_order_then_refund(live_api: Api) -> None:
    program = Program(live_api)
    p = await program.partner()
    pairs = []
    for i in range(8):
        c = Customer.new()
        await program.register(p, c, at="2026-01-10T09:00:00Z")
        order = order_event(c, [line("server-business", 2, 200000, line_id="sb")], placed_at=t("2026-02-01T10:00:00Z"))
        refund = refund_event(order["data"]["order_id"], [("sb", 100000 * (1 + i % 2))], at=t("2026-02-01T10:00:30Z"))
        pairs.append((order, refund))
    program.at("2026-02-01T10:01:00Z")
    calls = []
    for i, (order, refund) in enumerate(pairs):
        calls += [_post_signed(program, refund, f"r{i}"), _post_signed(program, order, f"o{i}")]
    responses = await asyncio.gather(*calls)
    assert {r.status_code for r in responses} == {202}, [r.text for r in responses]
    await live_api.drain(scheduled=False)
    # Whatever arrived first, every refund is applied in the end and nothing is left parked.
    parked = (await program.client.get("/v1/webhook-events?status=parked", headers=live_api.admin)).json()["items"]
    assert parked == []
    # 8 orders of 8 points; half refunded by one licence (-4), half fully (-8).
    assert await program.total_points(p) == 8 * 8 - 4 * 4 - 4 * 8
    assert await program.total_money(p) == 8 * 40000 - 4 * 20000 - 4 * 40000


async def test_r10_sweeps_running_at_once_lapse_each_licence_once(live_api: Api, committing_database_url: str) -> None:
    from app.db.session import create_engine, create_session_factory
    from app.domain import orders

    program = Program(live_api)
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    lines = [line("desktop", 1, 0, licence_id=f"lic-sw-{i}", term_end=t("2026-03-01T00:00:00Z")) for i in range(30)]
    await program.order(c, lines, placed_at="2026-01-20T09:00:00Z", buyer=p[0])
    assert await program.total_points(p) == 30
    engine = create_engine(committing_database_url)
    factory = create_session_factory(engine)
    now = t("2026-03-02T00:00:00Z")

    async def sweeper() -> int:
        total = 0
        while True:
            async with factory.begin() as session:
                done = await orders.sweep_lapses(session, now=now, batch=4)
            total += done
            if done == 0:
                return total

    try:
        counts = await asyncio.gather(*(sweeper() for _ in range(4)))
    finally:
        await engine.dispose()
    assert sum(counts) == 30
    points = await program.points(p)
    assert sum(e["points"] for e in points) == 0
    assert len([e for e in points if e["rule"] == "R10"]) == 30


async def test_closing_a_quarter_twice_at_once_gives_one_set_of_statements(live_api: Api) -> None:
    program = Program(live_api)
    for i in range(5):
        p = await program.partner("2026-01-01T09:00:00Z")
        c = Customer.new()
        await program.register(p, c, at="2026-01-02T09:00:00Z")
        await program.order(c, [line("desktop", 1, 10000 * (i + 1))], placed_at="2026-02-01T10:00:00Z")
    program.at("2026-04-01T00:00:00Z")
    responses = await asyncio.gather(
        *(program.client.post("/v1/quarters/2026-Q1/close", headers=live_api.admin) for _ in range(6))
    )
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    assert sorted(r.json()["closed_now"] for r in responses) == [False] * 5 + [True]
    ids = {frozenset(s["id"] for s in r.json()["statements"]) for r in responses}
    assert len(ids) == 1 and len(next(iter(ids))) == 5
    listed = (await program.client.get("/v1/statements?quarter=2026-Q1", headers=live_api.admin)).json()["items"]
    assert len(listed) == 5


async def test_same_idempotency_key_at_once_does_the_work_once(live_api: Api) -> None:
    program = Program(live_api)
    p = await program.partner()
    body = {"kind": "points", "amount": 3, "reason": "race"}
    responses = await asyncio.gather(
        *(
            program.client.post(
                f"/v1/partners/{p[0]}/adjustments", json=body, headers={**live_api.admin, "Idempotency-Key": "same"}
            )
            for _ in range(8)
        )
    )
    # One request did the work; the others were refused while it ran (409) or replayed its answer.
    did_work = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    replayed = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    busy = [r for r in responses if r.status_code == 409]
    assert len(did_work) == 1 and len(did_work) + len(replayed) + len(busy) == 8, [r.text for r in responses]
    assert all(r.json() == did_work[0].json() for r in replayed)
    assert {r.json()["code"] for r in busy} <= {"idempotency_in_flight"}
    assert await program.total_points(p) == 3
