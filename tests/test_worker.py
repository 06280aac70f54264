"""The event backbone: the outbox, the worker that applies store events, and the scheduled jobs at
their moments (the injected clock moves; no test sleeps)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from app.db.repositories import customers as customers_repo
from app.db.session import unit_of_work
from app.domain import events, orders, webhooks
from app.worker import Worker, jobs
from tests.conftest import Api, watch_applied_together
from tests.program import Customer, Program, line, order_event, refund_event, t


@pytest.fixture
def program(api: Api) -> Program:
    return Program(api)


async def _events(api: Api, **query: Any) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/events", params={"limit": 200, **query}, headers=api.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def _post(program: Program, event: dict[str, Any], webhook_id: str) -> dict[str, Any]:
    """Deliver without settling: the raw intake answer."""
    response = await program.api.deliver(event, webhook_id)
    assert response.status_code in (200, 202), response.text
    return dict(response.json())


async def _stored(program: Program, event_id: int) -> dict[str, Any]:
    response = await program.client.get(f"/v1/webhook-events/{event_id}", headers=program.api.admin)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- the outbox -----------------------------------------------------------------------------------


async def test_outbox_event_is_written_with_its_change_and_never_without_it(api: Api) -> None:
    factory = api.app.state.session_factory
    payload = events.TermsTookEffect(
        version=99, effective_from=api.clock.now(), partners_recomputed=0, levels_changed=0
    )
    with pytest.raises(RuntimeError):
        async with unit_of_work(factory) as session:
            events.record(
                session, "terms.took_effect", payload, occurred_at=api.clock.now(), partner_id=None, subject="terms:99"
            )
            await session.flush()
            raise RuntimeError("the change fails after its event was written")
    async with unit_of_work(factory) as session:
        assert not await events.exists(session, "terms.took_effect", "terms:99")
    # Through the API: a registered partner has its event; a refused registration has none.
    partner, _ = await api.register()
    refused = await api.client.post("/v1/partners", json=api.registration(contact_email=partner["contact_email"]))
    assert refused.status_code == 409
    registered = await _events(api, type="partner.registered")
    assert [(e["partner_id"], e["payload"]["company"]) for e in registered] == [(partner["id"], partner["company"])]


async def test_partner_reads_only_its_own_events_and_the_program_wide_ones(program: Program) -> None:
    a, a_key = await program.api.register(company="Alpha BI")
    b, b_key = await program.api.register(company="Beta BI")
    customer = Customer.new()
    assert (await program.register((b["id"], b_key), customer)).status_code == 201
    suspended = await program.client.post(
        f"/v1/partners/{b['id']}/suspend", json={"reason": "unpaid"}, headers=program.api.admin
    )
    assert suspended.status_code == 200, suspended.text
    own = await program.client.get(f"/v1/partners/{a['id']}/events", headers=program.api.bearer(a_key))
    assert own.status_code == 200
    assert [(e["type"], e["partner_id"]) for e in own.json()["items"]] == [("partner.registered", a["id"])]
    b_events = (await program.client.get(f"/v1/partners/{b['id']}/events", headers=program.api.bearer(b_key))).json()
    assert [e["type"] for e in b_events["items"]] == ["partner.registered", "registration.created", "partner.suspended"]
    assert b_events["items"][2]["payload"] == {
        "partner_id": b["id"],
        "from_status": "active",
        "to_status": "suspended",
        "reason": "unpaid",
        "by": b_events["items"][2]["payload"]["by"],
    }
    other = await program.client.get(f"/v1/partners/{b['id']}/events", headers=program.api.bearer(a_key))
    assert other.status_code == 404
    not_theirs = await program.client.get(
        f"/v1/partners/{a['id']}/events", params={"type": "store_event.parked"}, headers=program.api.bearer(a_key)
    )
    assert not_theirs.status_code == 422 and not_theirs.json()["code"] == "event_type_not_for_partners"
    # The admin's log, a page at a time, oldest first.
    first = (await program.client.get("/v1/events", params={"limit": 2}, headers=program.api.admin)).json()
    assert [e["type"] for e in first["items"]] == ["partner.registered", "partner.registered"]
    assert first["has_more"] is True
    rest = (
        await program.client.get(
            "/v1/events", params={"limit": 2, "cursor": first["next_cursor"]}, headers=program.api.admin
        )
    ).json()
    assert [e["type"] for e in rest["items"]] == ["registration.created", "partner.suspended"]
    assert rest["has_more"] is False and rest["next_cursor"] is None
    by_partner = await _events(program.api, partner_id=a["id"])
    assert [e["type"] for e in by_partner] == ["partner.registered"]


# --- store events applied by the worker ---------------------------------------------------------


async def test_intake_answers_202_then_the_worker_applies_and_the_store_reads_the_outcome(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    event = order_event(c, [line("desktop", 2, 96000)], placed_at=t("2026-02-01T10:00:00Z"))
    receipt = await _post(program, event, "msg_intake")
    assert receipt == {
        "event_id": receipt["event_id"],
        "status": "accepted",
        "url": f"/v1/webhook-events/{receipt['event_id']}",
        "reason_code": None,
        "reason": None,
    }
    store = program.api.bearer(await program.api.issue_key("store", ["store"]))
    before = (await program.client.get(receipt["url"], headers=store)).json()
    assert before["status"] == "accepted" and before["applied_at"] is None
    assert await program.total_points(p) == 0
    # The same webhook-id again is a duplicate before its body is even read.
    again = await _post(program, {"type": "order.paid", "data": "not an order"}, "msg_intake")
    assert again["status"] == "duplicate" and again["event_id"] == receipt["event_id"]
    await program.api.drain(scheduled=False)
    after = (await program.client.get(receipt["url"], headers=store)).json()
    assert after["status"] == "applied" and after["applied_at"] == "2026-02-01T10:01:00Z"
    assert await program.total_points(p) == 2


async def test_an_event_failing_unexpectedly_is_retried_then_parked_and_later_ones_wait(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await program.partner()
    bad, good = Customer.new("Bad"), Customer.new("Good")
    await program.register(p, bad, at="2026-01-10T09:00:00Z")
    await program.register(p, good, at="2026-01-10T09:00:00Z")
    await program.api.drain(scheduled=False)  # the worker's other readers of what happened so far are done
    program.at("2026-02-01T10:01:00Z")
    real = orders.apply_order

    async def failing(session: Any, facts: Any, data: Any, **kwargs: Any) -> Any:
        if data.order_id == "ord_bad":
            raise RuntimeError("boom")
        return await real(session, facts, data, **kwargs)

    monkeypatch.setattr(orders, "apply_order", failing)
    first = await _post(
        program,
        order_event(bad, [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z"), order_id="ord_bad"),
        "a",
    )
    second = await _post(
        program, order_event(good, [line("desktop", 3, 100)], placed_at=t("2026-02-01T10:00:00Z")), "b"
    )
    for attempt in range(1, 5):
        await program.api.drain(scheduled=False)
        failing_event = await _stored(program, first["event_id"])
        assert (failing_event["status"], failing_event["failures"]) == ("accepted", attempt)
        assert failing_event["reason"] == "RuntimeError: boom"
        assert (await _stored(program, second["event_id"]))["status"] == "accepted"  # in order: it waits
    await program.api.drain(scheduled=False)
    parked = await _stored(program, first["event_id"])
    assert (parked["status"], parked["reason_code"], parked["failures"]) == ("parked", "apply_failed", 5)
    assert (await _stored(program, second["event_id"]))["status"] == "applied"
    assert await program.total_points(p) == 3
    notices = await _events(program.api, type="store_event.parked")
    assert [(n["payload"]["event_id"], n["payload"]["reason_code"]) for n in notices] == [
        (first["event_id"], "apply_failed")
    ]


async def test_a_batch_meeting_what_another_transaction_wrote_meanwhile_is_applied_again_reading_afresh(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction took an identifier the order gives its customer after the batch read it
    (the batch's INSERT of identifiers meets the unique constraint): the batch is applied again and
    reads afresh; when that keeps happening, the event counts a failure."""
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    real, calls = customers_repo.insert_customers, []

    def taken() -> IntegrityError:
        return IntegrityError("INSERT INTO customer_identifiers", {}, Exception("duplicate key value"))

    async def taken_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise taken()
        return await real(*args, **kwargs)

    monkeypatch.setattr(customers_repo, "insert_customers", taken_once)
    together = watch_applied_together(monkeypatch)
    with_vat = replace(c, vat_id="FR40303265045")  # an identifier its customer does not hold yet
    first = await _post(
        program, order_event(with_vat, [line("desktop", 2, 100)], placed_at=t("2026-02-01T10:00:00Z")), "c1"
    )
    await program.api.drain(scheduled=False)
    stored = await _stored(program, first["event_id"])
    assert (stored["status"], stored["reason_code"], stored["failures"]) == ("applied", "credited", 0)
    assert len(calls) == 2 and together == [1]  # the first try was rolled back, the second applied
    assert await program.total_points(p) == 2

    async def always_taken(*args: Any, **kwargs: Any) -> Any:
        raise taken()

    monkeypatch.setattr(customers_repo, "insert_customers", always_taken)
    another_vat = replace(c, vat_id="DE136695977")
    second = await _post(
        program, order_event(another_vat, [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z")), "c2"
    )
    await program.api.drain(scheduled=False)
    stored = await _stored(program, second["event_id"])
    assert (stored["status"], stored["failures"]) == ("accepted", 1)
    assert stored["reason"].startswith("Contended: an identifier of a customer of the batch was taken meanwhile")
    assert await program.total_points(p) == 2


async def test_a_batch_of_plain_orders_applies_together_with_each_outcome_recorded(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several events in one pass: applied in one go, each row keeps its own outcome."""
    together = watch_applied_together(monkeypatch)
    p = await program.partner()
    known, unknown = Customer.new("Known"), Customer.new("Nobody")
    await program.register(p, known, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    placed = t("2026-02-01T10:00:00Z")
    receipts = [
        await _post(program, order_event(known, [line("desktop", 2, 96000)], placed_at=placed), "batch-1"),
        await _post(program, order_event(unknown, [line("desktop", 1, 48000)], placed_at=placed), "batch-2"),
        await _post(program, order_event(known, [line("server-business", 1, 250000)], placed_at=placed), "batch-3"),
    ]
    assert await program.api.drain(scheduled=False) >= 3
    stored = [await _stored(program, r["event_id"]) for r in receipts]
    assert [(e["status"], e["reason_code"], e["applied_at"]) for e in stored] == [
        ("applied", "credited", "2026-02-01T10:01:00Z"),
        ("applied", "no_match", "2026-02-01T10:01:00Z"),
        ("applied", "credited", "2026-02-01T10:01:00Z"),
    ]
    assert await program.total_points(p) == 2 * 1 + 1 * 4  # R01: desktop 1, server-business 4
    assert together == [3]  # applied together: never one by one


async def test_a_batch_with_a_park_a_duplicate_and_a_waiting_refund_keeps_each_outcome(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One event of the batch parks, one repeats an order under another webhook id, and a refund
    that arrived before its order waits for it: each is settled in the same batch as it would be
    alone, nothing of the parked one is credited, and the refund applies right after its order."""
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    placed = t("2026-02-01T10:00:00Z")
    first = order_event(c, [line("desktop", 2, 96000, line_id="l1")], placed_at=placed, order_id="ord_first")
    refund = refund_event("ord_later", [("k1", 48000)], at=t("2026-02-01T10:00:30Z"))
    later = order_event(c, [line("desktop", 3, 144000, line_id="k1")], placed_at=placed, order_id="ord_later")
    unknown_sku = order_event(c, [line("no-such-sku", 1, 100)], placed_at=placed, order_id="ord_bad_sku")
    receipts = [
        await _post(program, first, "w1"),
        await _post(program, refund, "w2"),
        await _post(program, unknown_sku, "w3"),
        await _post(program, first, "w4"),  # the same order under another webhook id
        await _post(program, later, "w5"),
    ]
    together = watch_applied_together(monkeypatch)
    await program.api.drain(scheduled=False)
    assert together == [5, 1]  # the five in one go; then the refund that waited for the last of them
    stored = [await _stored(program, r["event_id"]) for r in receipts]
    assert [(e["status"], e["reason_code"]) for e in stored] == [
        ("applied", "credited"),
        ("applied", "refunded"),  # applied once its order was
        ("parked", "unknown_sku"),
        ("duplicate", "same_content"),
        ("applied", "credited"),
    ]
    points = await program.points(p)
    assert sorted((e["order_id"], e["points"]) for e in points) == [
        ("ord_first", 2),
        ("ord_later", -1),
        ("ord_later", 3),
    ]


async def test_applier_lease_is_taken_over_only_once_it_has_expired(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    app = program.api.app
    first = Worker(app.state.session_factory, program.api.clock, app.state.settings, name="first")
    second = Worker(app.state.session_factory, program.api.clock, app.state.settings, name="second")
    await _post(program, order_event(c, [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z")), "one")
    assert await first.apply_store_events() == 1  # "first" holds the applier's lease now, then dies
    event = await _post(program, order_event(c, [line("desktop", 2, 100)], placed_at=t("2026-02-01T10:00:00Z")), "two")
    assert await second.apply_store_events() == 0
    assert (await _stored(program, event["event_id"]))["status"] == "accepted"
    program.api.clock.advance(seconds=app.state.settings.worker_lease_seconds + 1)
    assert await second.apply_store_events() == 1
    assert (await _stored(program, event["event_id"]))["status"] == "applied"
    assert await program.total_points(p) == 3
    jobs = (await program.client.get("/v1/jobs", headers=program.api.admin)).json()
    assert jobs["store_events"]["holder"] == "second" and jobs["store_events"]["accepted"] == 0


# --- scheduled jobs at their moments ------------------------------------------------------------


async def test_r07_registration_expiring_notice_7_days_before_then_expiry(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    registered = await program.register(p, c, at="2026-03-02T09:00:00Z")
    registration_id = registered.json()["id"]
    program.at("2026-04-24T08:59:00Z")  # 7 days before 2026-05-01T09:00Z, less a minute
    await program.api.drain()
    assert await _events(program.api, type="registration.expiring") == []
    program.at("2026-04-24T09:00:00Z")
    await program.api.drain()
    program.api.clock.advance(hours=1)
    await program.api.drain()  # the job runs again: the notice is not sent twice
    notices = await _events(program.api, type="registration.expiring")
    assert [(n["payload"]["registration_id"], n["payload"]["expires_at"]) for n in notices] == [
        (registration_id, "2026-05-01T09:00:00Z")
    ]
    program.at("2026-05-01T09:00:00Z")
    await program.api.drain()
    expired = await _events(program.api, type="registration.expired")
    assert [(e["subject"], e["payload"]["state"], e["payload"]["ended_at"]) for e in expired] == [
        (f"registration:{registration_id}", "expired", "2026-05-01T09:00:00Z")
    ]
    listed = (await program.client.get(f"/v1/partners/{p[0]}/registrations", headers=program.api.admin)).json()["items"]
    assert listed[0]["state"] == "expired"
    jobs = {j["name"]: j for j in (await program.client.get("/v1/jobs", headers=program.api.admin)).json()["items"]}
    window = jobs["registration_windows"]
    assert window["last_outcome"] == "ok" and window["last_counts"] == {"expiring_notices": 0, "expired": 1}
    assert window["last_started_at"] == "2026-05-01T09:00:00Z" and window["next_run_at"] == "2026-05-01T09:05:00Z"


async def test_r10_lapses_due_are_applied_by_the_worker_at_their_moment(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    lines = [line("server-business", 1, 1000, licence_id="lic-due", term_end=t("2026-06-01T00:00:00Z"))]
    await program.order(c, lines, placed_at="2026-01-20T09:00:00Z", buyer=p[0])
    program.at("2026-05-31T23:59:00Z")
    await program.api.drain()
    assert await program.total_points(p) == 4
    program.at("2026-06-01T00:03:59Z")  # the job ran at 23:59 and runs every 5 minutes: not due yet
    await program.api.drain()
    assert await program.total_points(p) == 4
    program.at("2026-06-01T00:04:00Z")
    await program.api.drain()
    points = await program.points(p)
    assert [(e["rule"], e["points"], e["effective_at"]) for e in points] == [
        ("R09", 4, "2026-01-20T09:00:00Z"),
        ("R10", -4, "2026-06-01T00:00:00Z"),  # effective at the term's end, whenever it is noticed
    ]


async def test_r19_lead_offer_deadline_passes_the_lead_on_with_events(program: Program) -> None:
    program.at("2026-02-01T09:00:00Z")
    first, _ = await program.api.register(company="First BI", country="FR")
    second, _ = await program.api.register(company="Second BI", country="FR")
    body = {"company": "Prospect SAS", "country": "FR", "contact_name": "P", "contact_email": "p@prospect.example"}
    lead = (await program.client.post("/v1/leads", json=body, headers=program.api.admin)).json()
    offer = (await program.client.post(f"/v1/leads/{lead['id']}/assign", json={}, headers=program.api.admin)).json()
    assert offer["deadline"] == "2026-02-06T09:00:00Z"
    program.at("2026-02-06T08:59:00Z")
    await program.api.drain()
    assert await _events(program.api, type="lead.expired") == []
    program.at("2026-02-06T09:00:00Z")
    await program.api.drain()
    expired = await _events(program.api, type="lead.expired")
    offered = await _events(program.api, type="lead.offered")
    assert [e["partner_id"] for e in expired] == [offer["partner_id"]]
    assert [e["partner_id"] for e in offered] == [
        offer["partner_id"],
        ({first["id"], second["id"]} - {offer["partner_id"]}).pop(),
    ]


async def test_r16_overdue_statement_is_flagged_once_after_its_payout_date(program: Program) -> None:
    p = await program.partner("2026-01-01T09:00:00Z")
    c = Customer.new()
    await program.register(p, c, at="2026-01-02T09:00:00Z")
    await program.order(c, [line("desktop", 1, 10000)], placed_at="2026-02-01T10:00:00Z")
    program.at("2026-04-01T00:00:00Z")
    closed = await program.client.post("/v1/quarters/2026-Q1/close", headers=program.api.admin)
    statement = closed.json()["statements"][0]
    approved = await program.client.post(f"/v1/statements/{statement['id']}/approve", headers=program.api.admin)
    assert approved.status_code == 200, approved.text
    program.at("2026-04-25T23:59:59Z")  # paid on its payout date would be on time
    await program.api.drain()
    assert await _events(program.api, type="statement.overdue") == []
    program.at("2026-04-26T00:00:00Z")
    await program.api.drain()
    program.api.clock.advance(hours=2)
    await program.api.drain()
    overdue = await _events(program.api, type="statement.overdue")
    assert [(e["payload"]["statement_id"], e["payload"]["payable_amount"]) for e in overdue] == [
        (statement["id"], 2000)
    ]
    assert [e["type"] for e in await _events(program.api, partner_id=p[0]) if e["type"].startswith("statement.")] == [
        "statement.ready",
        "statement.approved",
        "statement.overdue",
    ]


async def test_r16_a_draft_statement_is_flagged_overdue_the_same_way(program: Program) -> None:
    p = await program.partner("2026-01-01T09:00:00Z")
    c = Customer.new()
    await program.register(p, c, at="2026-01-02T09:00:00Z")
    await program.order(c, [line("desktop", 1, 35000)], placed_at="2026-02-27T10:00:00Z")
    program.at("2026-04-02T00:00:00Z")
    [statement] = (await program.client.post("/v1/quarters/2026-Q1/close", headers=program.api.admin)).json()[
        "statements"
    ]
    program.at("2026-04-25T12:00:00Z")
    await program.api.drain()
    assert await _events(program.api, type="statement.overdue") == []
    program.at("2026-04-26T00:00:00Z")
    await program.api.drain()
    program.api.clock.advance(hours=3)
    approved = await program.client.post(f"/v1/statements/{statement['id']}/approve", headers=program.api.admin)
    assert approved.status_code == 200, approved.text
    await program.api.drain()
    overdue = [
        (e["payload"]["statement_id"], e["payload"]["status"], e["payload"]["payable_amount"])
        for e in await _events(program.api, type="statement.overdue")
    ]
    assert overdue == [(statement["id"], "draft", 7000)]  # once, as a draft: approving it does not flag it again


async def test_idempotency_records_are_pruned_after_24_hours(program: Program) -> None:
    p = await program.partner()
    body = {"kind": "points", "amount": 3, "reason": "goodwill"}
    headers = {**program.api.admin, "Idempotency-Key": "adj-1"}
    first = await program.client.post(f"/v1/partners/{p[0]}/adjustments", json=body, headers=headers)
    assert first.status_code == 201, first.text
    program.api.clock.advance(hours=23)
    await program.api.drain()
    replay = await program.client.post(f"/v1/partners/{p[0]}/adjustments", json=body, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true"
    program.api.clock.advance(hours=1, seconds=1)
    await program.api.drain()
    again = await program.client.post(f"/v1/partners/{p[0]}/adjustments", json=body, headers=headers)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert await program.total_points(p) == 6


async def test_a_job_run_finishing_after_a_newer_run_of_the_same_job_leaves_the_newer_runs_figures(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = program.api
    p = await program.partner()
    await api.drain()  # every job has run once; the next prune is due in an hour
    headers = {**api.admin, "Idempotency-Key": "adj-overlap"}
    adjusted = await api.client.post(
        f"/v1/partners/{p[0]}/adjustments", json={"kind": "points", "amount": 4, "reason": "goodwill"}, headers=headers
    )
    assert adjusted.status_code == 201, adjusted.text
    newer = Worker(api.app.state.session_factory, api.clock, api.app.state.worker.settings, name="newer")
    prune = jobs.prune_idempotency
    overlapped: list[dict[str, int]] = []

    async def older_run(factory: Any, now: Any) -> dict[str, int]:
        counts = await prune(factory, now)  # nothing is 24 hours old yet at this run's moment
        if not overlapped:
            overlapped.append(counts)
            # The clock jumps while this run is still going: another worker finds the job due again,
            # claims the next moment, runs and finishes first.
            api.clock.advance(hours=30)
            await newer.run_due_jobs()
        return counts

    monkeypatch.setattr(
        jobs,
        "JOBS",
        [replace(job, run=older_run) if job.name == "prune_idempotency" else job for job in jobs.JOBS],
    )
    api.clock.advance(hours=1, seconds=1)
    await api.app.state.worker.run_due_jobs()
    assert overlapped == [{"pruned": 0}]

    listed = await api.client.get("/v1/jobs", headers=api.admin)
    assert listed.status_code == 200, listed.text
    job = next(item for item in listed.json()["items"] if item["name"] == "prune_idempotency")
    # The newer run pruned the record; the older one, finishing last, did not overwrite its figures.
    assert job["last_counts"] == {"pruned": 1}
    assert job["last_outcome"] == "ok"
    assert job["runs"] == 3


async def test_r03_new_terms_taking_effect_recompute_stored_levels_with_history(program: Program) -> None:
    """A Gold partner at 200 points; new terms put Gold at 250 from a future date."""
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    await program.order(
        c, [line("server-enterprise", 40, 0, list_amount=0)], placed_at="2026-01-20T09:00:00Z", buyer=p[0]
    )
    program.at("2026-03-02T09:00:00Z")
    await program.api.drain()  # the first run takes the current terms into effect: nothing is stale
    assert (await program.status(p))["level"] == "gold"
    current = (await program.client.get("/v1/program/terms", headers=program.api.admin)).json()["terms"]
    levels = [
        {"level": "affiliate", "min_points": 0, "rate_bp": 0},
        {"level": "silver", "min_points": 1, "rate_bp": 2000},
        {"level": "gold", "min_points": 250, "rate_bp": 2500},
        {"level": "platinum", "min_points": 400, "rate_bp": 3000},
    ]
    published = await program.client.post(
        "/v1/program/terms",
        json={"effective_from": "2026-04-01T00:00:00Z", "terms": {**current, "levels": levels}},
        headers=program.api.admin,
    )
    assert published.status_code == 201, published.text
    program.at("2026-03-31T23:59:00Z")
    await program.api.drain()
    directory = (await program.client.get("/v1/directory", params={"q": "Partner"})).json()
    assert {e["id"]: e["level"] for e in directory["items"]}.get(p[0]) == "gold"
    program.at("2026-04-01T00:00:00Z")
    await program.api.drain()
    assert (await program.status(p))["level"] == "silver"
    directory = (await program.client.get("/v1/directory", params={"q": "Partner"})).json()
    assert {e["id"]: e["level"] for e in directory["items"]}.get(p[0]) == "silver"
    history = (await program.client.get(f"/v1/partners/{p[0]}/level-history", headers=program.api.bearer(p[1]))).json()[
        "items"
    ]
    assert history[-1] == {
        "from_level": "gold",
        "to_level": "silver",
        "points_after": 200,
        "changed_at": "2026-04-01T00:00:00Z",
        "points_entry_id": None,
        "terms_version": 2,
    }
    changed = [
        e for e in await _events(program.api, type="partner.level_changed") if e["payload"]["cause"]["terms_version"]
    ]
    assert [(e["partner_id"], e["payload"]["to_level"], e["occurred_at"]) for e in changed] == [
        (p[0], "silver", "2026-04-01T00:00:00Z")
    ]
    took = await _events(program.api, type="terms.took_effect")
    assert [(e["payload"]["version"], e["payload"]["levels_changed"]) for e in took] == [(1, 0), (2, 1)]
    # A partner reads terms.took_effect too.
    own = (await program.client.get(f"/v1/partners/{p[0]}/events", headers=program.api.bearer(p[1]))).json()["items"]
    assert [e["payload"]["version"] for e in own if e["type"] == "terms.took_effect"] == [1, 2]


async def test_e4_through_intake_the_quote_waits_for_accepted_events(live_worker_api: Api) -> None:
    program = Program(live_worker_api)
    r = await program.partner()
    c = Customer.new()
    await program.register(r, c, at="2026-01-10T09:00:00Z")
    program.at("2026-01-20T09:01:00Z")
    store = program.api.bearer(await program.api.issue_key("store", ["store"]))
    quote_body = {
        "partner_id": r[0],
        "customer": c.store(),
        "currency": "EUR",
        "lines": [{"sku": "server-business", "quantity": 1, "kind": "new", "list_amount": 150000}],
    }
    # 158 points, accepted but not yet applied when the quote is asked for.
    lines = [line("server-business", 39, 800, discount=200), line("desktop", 2, 0)]
    first = order_event(c, lines, placed_at=t("2026-01-20T09:00:00Z"), buyer=r[0])
    assert (await _post(program, first, "e4-1"))["status"] == "accepted"
    quote = await program.client.post("/v1/pricing/quote", json=quote_body, headers=store)
    assert quote.status_code == 200, quote.text
    assert quote.json()["rate_bp"] == 2000 and quote.json()["lines"][0]["discount_amount"] == 30000
    program.at("2026-01-21T09:01:00Z")
    second = order_event(
        c, [line("server-business", 1, 120000, discount=30000)], placed_at=t("2026-01-21T09:00:00Z"), buyer=r[0]
    )
    assert (await _post(program, second, "e4-2"))["status"] == "accepted"
    quote = await program.client.post("/v1/pricing/quote", json=quote_body, headers=store)
    assert quote.status_code == 200, quote.text
    assert quote.json()["level"] == "gold" and quote.json()["rate_bp"] == 2500
    status = await program.status(r)
    assert status["active_points"] == 162 and status["level"] == "gold"


async def test_a_quote_answers_503_level_pending_when_nothing_applies_the_backlog(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    await _post(program, order_event(c, [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z")), "pending")
    store = program.api.bearer(await program.api.issue_key("store", ["store"]))
    body = {
        "partner_id": p[0],
        "customer": c.store(),
        "currency": "EUR",
        "lines": [{"sku": "desktop", "quantity": 1, "kind": "new", "list_amount": 48000}],
    }
    quote = await program.client.post("/v1/pricing/quote", json=body, headers=store)
    assert quote.status_code == 503 and quote.json()["code"] == "level_pending"
    assert quote.headers["retry-after"] == "1"
    await program.api.drain(scheduled=False)
    assert (await program.client.post("/v1/pricing/quote", json=body, headers=store)).status_code == 200


async def test_a_quote_that_can_never_succeed_is_refused_at_once_not_after_waiting(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invalid quote request is answered 422 at once while accepted events wait to be applied: it
    neither waits for the applier nor answers 503 `level_pending`."""
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-03T08:01:00Z")
    await _post(program, order_event(c, [line("desktop", 2, 200)], placed_at=t("2026-02-03T08:00:00Z")), "backlog")
    store = program.api.bearer(await program.api.issue_key("store", ["store"]))
    waited: list[float] = []
    real_wait = webhooks.wait_until_applied

    async def counted(read: Any, *, within: float, poll: float = 0.02) -> None:
        waited.append(within)
        await real_wait(read, within=within, poll=poll)

    monkeypatch.setattr(webhooks, "wait_until_applied", counted)
    body = {
        "partner_id": p[0],
        "customer": c.store(),
        "currency": "EUR",
        "lines": [{"sku": "desktop", "quantity": 2, "kind": "new", "list_amount": 64000}],
    }
    for change, field in (
        ({"partner_id": None}, "body.partner_id"),
        ({"currency": "XTS"}, "body.currency"),
        ({"lines": []}, "body.lines"),
    ):
        refused = await program.client.post("/v1/pricing/quote", json={**body, **change}, headers=store)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "validation_failed"
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert waited == []  # none of them waited for the applier
    # Without a key, still 401 first; a valid quote still waits for the backlog.
    assert (await program.client.post("/v1/pricing/quote", json={**body, "partner_id": None})).status_code == 401
    pending = await program.client.post("/v1/pricing/quote", json=body, headers=store)
    assert pending.status_code == 503 and pending.json()["code"] == "level_pending"
    assert len(waited) == 1


def test_every_event_type_has_a_payload_model_whose_example_validates() -> None:
    assert set(events.CATALOGUE) == set(events.EventType.__args__)  # type: ignore[attr-defined]
    for event_type, kind in events.CATALOGUE.items():
        assert kind.payload.model_validate(kind.example), event_type
        assert event_type.count(".") == 1 and kind.description.endswith(".")


async def test_a_parked_event_is_told_once_however_often_it_is_replayed_unchanged(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    parked = await program.order(c, [line("cloud-premium", 2, 100000)], placed_at="2026-01-20T09:00:00Z", expect=202)
    event_id = parked["receipt"]["event_id"]
    for _ in range(2):
        replay = await program.client.post(f"/v1/webhook-events/{event_id}/replay", headers=program.api.admin)
        assert replay.status_code == 202 and replay.json()["reason_code"] == "unknown_sku", replay.text
    notices = await _events(program.api, type="store_event.parked")
    assert [(n["payload"]["event_id"], n["payload"]["reason_code"]) for n in notices] == [(event_id, "unknown_sku")]


async def _mixed_batch(program: Program, batch: int, passes: list[int]) -> dict[str, Any]:
    """Partners, customers and a batch of eight events that lean on one another (a relationship
    established by one order and used by the next, a level crossed mid-batch, a renewal of a licence
    the batch created, a refund of an order of the batch, referral turned resale); applied by a
    worker taking `batch` events per pass (`passes`: the sizes of the groups applied together). Returns what it
    left, without the run's own ids."""
    program.api.app.state.worker.settings.worker_batch = batch
    a, b = await program.partner(), await program.partner()
    c1, c2, c3, stranger = Customer.new("One"), Customer.new("Two"), Customer.new("Three"), Customer.new("Nobody")
    for partner, customer in ((a, c1), (a, c2), (b, c3)):
        await program.register(partner, customer, at="2026-01-10T09:00:00Z")
    await program.order(c3, [line("desktop", 1, 48000)], placed_at="2026-02-01T10:00:00Z")  # b's, by referral
    program.at("2026-03-01T10:05:00Z")

    def placed(second: int) -> Any:
        return t(f"2026-03-01T10:00:{second:02d}Z")

    first_licence = line("server-enterprise", 6, 60000)
    resold = line("desktop", 2, 96000, line_id="r1")
    batch_events = [
        order_event(c1, [first_licence], placed_at=placed(1)),  # establishes a's relationship with c1
        order_event(c1, [line("server-enterprise", 6, 60000)], placed_at=placed(2)),  # uses it; a levels up
        order_event(c2, [line("desktop", 2, 96000)], placed_at=placed(3)),  # at a's new level
        order_event(c3, [resold], placed_at=placed(4), buyer=b[0], order_id=f"resale-{batch}"),  # now resale
        order_event(stranger, [line("desktop", 1, 48000)], placed_at=placed(5)),  # nobody's
        order_event(
            c1,
            [line("server-enterprise", 4, 40000, kind="renewal", licence_id=first_licence["licence_id"])],
            placed_at=placed(6),
        ),  # renews 4 of the 6 licences the batch's first order created
        refund_event(f"resale-{batch}", [("r1", 48000)], at=placed(30)),
        order_event(c3, [line("desktop", 1, 48000)], placed_at=placed(7)),  # b's, resale since the 4th
    ]
    receipts = [await _post(program, event, f"mixed-{batch}-{n}") for n, event in enumerate(batch_events)]
    passes.clear()
    await program.api.drain(scheduled=False)
    outcomes = [(e["status"], e["reason_code"]) for e in [await _stored(program, r["event_id"]) for r in receipts]]

    async def left(partner: tuple[str, str]) -> dict[str, Any]:
        history = await program.client.get(f"/v1/partners/{partner[0]}/level-history", headers=program.api.admin)
        status = await program.status(partner)
        return {
            "points": sorted((e["rule"], e["points"], e["effective_at"]) for e in await program.points(partner)),
            "money": sorted(
                (e["rule"], e["amount"], e["currency"], e["rate_bp"], e["base_amount"])
                for e in await program.money(partner)
            ),
            "status": {k: v for k, v in status.items() if k != "partner_id"},
            "levels": [h["to_level"] for h in history.json()["items"]],
        }

    return {"outcomes": outcomes, "a": await left(a), "b": await left(b)}


async def test_a_batch_applied_together_leaves_what_its_events_leave_one_by_one(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch path reads up front and writes at the end; whatever its events' dependencies on one
    another, it must leave exactly what applying them one at a time leaves."""
    passes = watch_applied_together(monkeypatch)
    one_by_one = await _mixed_batch(program, 1, passes)
    assert passes == [1] * 8  # each event alone
    together = await _mixed_batch(program, 100, passes)
    assert passes == [8]  # applied together, in one pass
    assert together == one_by_one
    assert together["a"]["levels"] and together["outcomes"][4] == ("applied", "no_match")
    assert all(status == "applied" for status, _ in together["outcomes"])
