"""Quarterly statements and payouts (R16, E8, E9), adjustments, Idempotency-Key, dashboards."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

import pytest

from tests.conftest import Api
from tests.program import Customer, Program, line


@pytest.fixture
def program(api: Api, delivery: str) -> Program:
    """Store events the test delivers are applied one by one, or together (`delivery`: both ways)."""
    return Program(api)


async def _referral(
    program: Program,
    placed_at: str,
    paid: int,
    *,
    customer: Customer | None = None,
    partner: tuple[str, str] | None = None,
    line_id: str = "l",
) -> tuple[tuple[str, str], Customer, str]:
    p = partner or await program.partner("2026-01-01T09:00:00Z")
    c = customer or Customer.new()
    if customer is None:
        await program.register(p, c, at="2026-01-02T09:00:00Z")
    order = await program.order(c, [line("desktop", 1, paid, line_id=line_id)], placed_at=placed_at)
    return p, c, order["event"]["data"]["order_id"]


async def _close(program: Program, quarter: str, **headers: str) -> Any:
    response = await program.client.post(f"/v1/quarters/{quarter}/close", headers={**program.api.admin, **headers})
    assert response.status_code == 200, response.text
    return response.json()


async def _mine(program: Program, p: tuple[str, str]) -> list[dict[str, Any]]:
    response = await program.client.get(f"/v1/partners/{p[0]}/statements", headers=program.api.bearer(p[1]))
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_e9_first_quarter_commissions_are_paid_on_25_april(program: Program) -> None:
    p, c, _ = await _referral(program, "2026-01-03T00:00:00Z", 10000)
    await program.order(c, [line("desktop", 1, 20000)], placed_at="2026-03-31T23:59:00Z")
    await program.order(c, [line("desktop", 1, 40000)], placed_at="2026-04-01T00:00:00Z")  # Q2
    program.at("2026-04-02T00:00:00Z")
    closed = await _close(program, "2026-Q1")
    assert closed["closed_now"] is True
    [statement] = [s for s in closed["statements"] if s["partner_id"] == p[0]]
    assert statement["payout_date"] == "2026-04-25" and statement["quarter"] == "2026-Q1"
    assert statement["lines_total"] == 2000 + 4000 and statement["payable_amount"] == 6000
    detail = (
        await program.client.get(f"/v1/partners/{p[0]}/statements/{statement['id']}", headers=program.api.bearer(p[1]))
    ).json()
    assert [(ln["rule"], ln["amount"], ln["customer"]) for ln in detail["lines"]] == [
        ("R11", 2000, c.company),
        ("R11", 4000, c.company),
    ]


async def test_e8_refund_after_the_q2_statement_was_paid_lands_in_q3(program: Program) -> None:
    p, c, _ = await _referral(program, "2026-02-01T10:00:00Z", 96000)
    order = await program.order(
        c, [line("server-enterprise", 1, 300000, line_id="se")], placed_at="2026-06-15T10:00:00Z"
    )
    program.at("2026-07-01T00:00:00Z")
    await _close(program, "2026-Q1")
    q2 = next(s for s in (await _close(program, "2026-Q2"))["statements"] if s["partner_id"] == p[0])
    assert q2["payable_amount"] == 60000
    await program.client.post(f"/v1/statements/{q2['id']}/approve", headers=program.api.admin)
    paid = await program.client.post(
        f"/v1/statements/{q2['id']}/mark-paid",
        json={"payment_reference": "SEPA-2026-07-25-001", "paid_on": "2026-07-25"},
        headers=program.api.admin,
    )
    assert paid.json()["status"] == "paid" and paid.json()["paid_at"] == "2026-07-25T00:00:00Z"
    await program.refund(order["event"]["data"]["order_id"], [("se", 300000)], at="2026-08-02T10:00:00Z")
    program.at("2026-10-01T00:00:00Z")
    q3 = next(s for s in (await _close(program, "2026-Q3"))["statements"] if s["partner_id"] == p[0])
    assert q3["lines_total"] == -60000 and q3["payable_amount"] == 0 and q3["closing_balance"] == -60000
    assert (await program.status(p))["active_points"] == 1  # the 5 points are gone too
    # The paid Q2 statement never changed.
    again = (await program.client.get(f"/v1/partners/{p[0]}/statements/{q2['id']}", headers=program.api.admin)).json()
    assert again["payable_amount"] == 60000 and again["status"] == "paid"


async def test_negative_total_is_carried_into_the_next_statement(program: Program) -> None:
    p, c, order_id = await _referral(program, "2026-02-01T10:00:00Z", 100000, line_id="d")
    program.at("2026-04-01T00:00:00Z")
    await _close(program, "2026-Q1")
    await program.refund(order_id, [("d", 100000)], at="2026-04-10T00:00:00Z")  # -20000 in Q2
    await program.order(c, [line("desktop", 1, 50000)], placed_at="2026-07-10T00:00:00Z")  # +10000 in Q3
    program.at("2026-07-01T00:00:00Z")
    q2 = next(s for s in (await _close(program, "2026-Q2"))["statements"] if s["partner_id"] == p[0])
    assert (q2["opening_balance"], q2["closing_balance"], q2["payable_amount"]) == (0, -20000, 0)
    program.at("2026-10-01T00:00:00Z")
    q3 = next(s for s in (await _close(program, "2026-Q3"))["statements"] if s["partner_id"] == p[0])
    assert (q3["opening_balance"], q3["lines_total"], q3["closing_balance"], q3["payable_amount"]) == (
        -20000,
        10000,
        -10000,
        0,
    )


async def test_a_late_entry_goes_to_the_next_open_quarter_and_says_so(program: Program) -> None:
    p, c, _ = await _referral(program, "2026-02-01T10:00:00Z", 10000)
    program.at("2026-04-01T00:00:00Z")
    q1 = await _close(program, "2026-Q1")
    q1_ids = {s["id"] for s in q1["statements"]}
    await program.order(c, [line("desktop", 1, 50000)], placed_at="2026-03-15T00:00:00Z")  # arrives after the close
    program.at("2026-07-01T00:00:00Z")
    q2 = next(s for s in (await _close(program, "2026-Q2"))["statements"] if s["partner_id"] == p[0])
    detail = (await program.client.get(f"/v1/partners/{p[0]}/statements/{q2['id']}", headers=program.api.admin)).json()
    assert [(ln["amount"], ln["label"]) for ln in detail["lines"]] == [
        (10000, "dated 2026-Q1, recorded after 2026-Q1 was closed")
    ]
    again = await _close(program, "2026-Q1")
    assert again["closed_now"] is False and {s["id"] for s in again["statements"]} == q1_ids


async def test_entries_on_hold_at_close_go_to_the_next_statement_labelled(program: Program) -> None:
    program.at("2026-01-01T00:00:00Z")
    current = (await program.client.get("/v1/program/terms", headers=program.api.admin)).json()["terms"]
    published = await program.client.post(
        "/v1/program/terms",
        json={"effective_from": "2026-01-01T00:00:01Z", "terms": {**current, "hold_days": 30}},
        headers=program.api.admin,
    )
    assert published.status_code == 201, published.text
    p, c, _ = await _referral(program, "2026-02-01T10:00:00Z", 10000)
    await program.order(c, [line("desktop", 1, 50000)], placed_at="2026-03-20T00:00:00Z")  # held past 31 March
    program.at("2026-04-01T00:00:00Z")
    q1 = next(s for s in (await _close(program, "2026-Q1"))["statements"] if s["partner_id"] == p[0])
    assert q1["lines_total"] == 2000
    program.at("2026-07-01T00:00:00Z")
    q2 = next(s for s in (await _close(program, "2026-Q2"))["statements"] if s["partner_id"] == p[0])
    detail = (await program.client.get(f"/v1/partners/{p[0]}/statements/{q2['id']}", headers=program.api.admin)).json()
    assert [(ln["amount"], ln["label"]) for ln in detail["lines"]] == [
        (10000, "dated 2026-Q1, held then (hold period)")
    ]


async def test_quarters_close_in_order_and_only_when_over(program: Program) -> None:
    await _referral(program, "2026-02-01T10:00:00Z", 10000)
    program.at("2026-03-31T23:00:00Z")
    early = await program.client.post("/v1/quarters/2026-Q1/close", headers=program.api.admin)
    assert early.status_code == 409 and early.json()["code"] == "quarter_not_over"
    program.at("2026-10-01T00:00:00Z")
    await _close(program, "2026-Q1")
    skipped = await program.client.post("/v1/quarters/2026-Q3/close", headers=program.api.admin)
    assert skipped.status_code == 409 and skipped.json()["code"] == "previous_quarter_open"
    bad = await program.client.post("/v1/quarters/2026-Q5/close", headers=program.api.admin)
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"
    assert [e["field"] for e in bad.json()["errors"]] == ["path.quarter"], bad.json()


async def test_statement_lifecycle_and_bulk_operations(program: Program) -> None:
    partners = [await _referral(program, "2026-02-01T10:00:00Z", 10000 * (i + 1)) for i in range(3)]
    program.at("2026-04-01T00:00:00Z")
    ids = [s["id"] for s in (await _close(program, "2026-Q1"))["statements"]]
    unpaid = await program.client.post(
        f"/v1/statements/{ids[0]}/mark-paid", json={"payment_reference": "x"}, headers=program.api.admin
    )
    assert unpaid.status_code == 409 and unpaid.json()["code"] == "statement_not_approved"
    approved = await program.client.post(
        "/v1/statements/bulk-approve", json={"statement_ids": ids}, headers=program.api.admin
    )
    assert [s["status"] for s in approved.json()] == ["approved"] * 3
    paid = await program.client.post(
        "/v1/statements/bulk-mark-paid",
        json={
            "payments": [
                {"statement_id": sid, "payment_reference": f"PAY-{i}", "paid_on": "2026-04-25"}
                for i, sid in enumerate(ids)
            ]
        },
        headers=program.api.admin,
    )
    assert [s["status"] for s in paid.json()] == ["paid"] * 3
    other_reference = await program.client.post(
        f"/v1/statements/{ids[0]}/mark-paid", json={"payment_reference": "other"}, headers=program.api.admin
    )
    assert other_reference.status_code == 409 and other_reference.json()["code"] == "statement_already_paid"
    audit = (await program.client.get("/v1/audit-events?action=statement.paid", headers=program.api.admin)).json()
    assert len(audit["items"]) == 3
    overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
    q1 = next(c for c in overview["commissions"] if c["quarter"] == "2026-Q1")
    assert q1 == {
        "quarter": "2026-Q1",
        "currency": "EUR",
        "accrued": 12000,
        "payable": 0,
        "due": 0,
        "in_payment": 0,
        "paid": 12000,
    }
    assert partners


async def test_idempotency_key_replays_refuses_other_bodies_and_in_flight(program: Program) -> None:
    p, _, _ = await _referral(program, "2026-02-01T10:00:00Z", 10000)
    body = {"kind": "money", "amount": 500, "currency": "EUR", "reason": "goodwill"}
    url = f"/v1/partners/{p[0]}/adjustments"
    first = await program.client.post(url, json=body, headers={**program.api.admin, "Idempotency-Key": "adj-1"})
    assert first.status_code == 201, first.text
    again = await program.client.post(url, json=body, headers={**program.api.admin, "Idempotency-Key": "adj-1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await program.client.post(
        url, json={**body, "amount": 600}, headers={**program.api.admin, "Idempotency-Key": "adj-1"}
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert [e["amount"] for e in await program.money(p) if e["rule"] == "ADJ"] == [500]
    # A request still in flight under a key: its marker is there, without an answer yet.
    from app.db.repositories import idempotency as repo
    from app.db.tables import IdempotencyRecord

    raw = json.dumps(body).encode()
    digest = hashlib.sha256(b"POST " + url.encode() + b"?\n" + raw).hexdigest()
    app = program.api.client._transport.app  # type: ignore[attr-defined]
    admin_key_id = (await program.client.get("/v1/api-keys", headers=program.api.admin)).json()["items"][0]["id"]
    async with app.state.session_factory.begin() as session:
        await repo.claim(
            session,
            IdempotencyRecord(
                actor=f"admin:{admin_key_id}",
                key="adj-2",
                method="POST",
                path=url,
                request_hash=digest,
                status="in_flight",
                created_at=program.api.clock.now(),
            ),
        )
    busy = await program.client.post(
        url, content=raw, headers={**program.api.admin, "Idempotency-Key": "adj-2", "content-type": "application/json"}
    )
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_in_flight"
    # A request that failed frees its key for a corrected retry.
    failed = await program.client.post(
        url, json={**body, "currency": None}, headers={**program.api.admin, "Idempotency-Key": "adj-3"}
    )
    assert failed.status_code == 422 and failed.json()["code"] == "currency_missing"
    retried = await program.client.post(url, json=body, headers={**program.api.admin, "Idempotency-Key": "adj-3"})
    assert retried.status_code == 201
    assert [e["amount"] for e in await program.money(p) if e["rule"] == "ADJ"] == [500, 500]


async def test_adjustments_are_entries_shown_to_the_partner(program: Program) -> None:
    p, _, _ = await _referral(program, "2026-02-01T10:00:00Z", 10000)
    program.at("2026-02-10T00:00:00Z")
    points = await program.client.post(
        f"/v1/partners/{p[0]}/adjustments",
        json={"kind": "points", "amount": -1, "reason": "duplicate licence"},
        headers=program.api.admin,
    )
    assert points.status_code == 201
    entries = await program.points(p)
    assert entries[-1]["rule"] == "ADJ" and entries[-1]["explanation"] == "manual adjustment: duplicate licence"
    assert (await program.status(p))["active_points"] == 0
    refused = await program.client.post(
        f"/v1/partners/{p[0]}/adjustments",
        json={"kind": "points", "amount": 5, "reason": "x"},
        headers=program.api.bearer(p[1]),
    )
    assert refused.status_code == 403


async def test_overview_points_distribution_counts_the_partners_partners_by_level_counts(program: Program) -> None:
    earner, _, _ = await _referral(program, "2026-02-01T10:00:00Z", 10000)  # 1 point, Silver
    await program.partner("2026-02-03T09:00:00Z")  # a newcomer: no entry, so no balance row
    adjusted = await program.partner("2026-02-03T09:30:00Z")
    suspended, _, _ = await _referral(program, "2026-02-04T10:00:00Z", 10000, partner=await program.partner())
    program.at("2026-02-05T00:00:00Z")
    for pid, points in ((adjusted[0], -3), (earner[0], 170)):
        posted = await program.client.post(
            f"/v1/partners/{pid}/adjustments",
            json={"kind": "points", "amount": points, "reason": "recount"},
            headers=program.api.admin,
        )
        assert posted.status_code == 201, posted.text
    suspend = await program.client.post(
        f"/v1/partners/{suspended[0]}/suspend", json={"reason": "audit"}, headers=program.api.admin
    )
    assert suspend.status_code == 200, suspend.text
    overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
    assert overview["partners_by_level"] == {"gold": 1, "affiliate": 2}
    assert [(d["key"], d["count"]) for d in overview["points_distribution"]] == [
        ("negative", 1),
        ("0", 1),
        ("1-159", 0),
        ("160-264", 1),
        ("265+", 0),
    ]
    assert sum(d["count"] for d in overview["points_distribution"]) == sum(overview["partners_by_level"].values())


async def test_statement_csv_parsed_back_equals_the_json(program: Program) -> None:
    p, c, _ = await _referral(program, "2026-02-01T10:00:00Z", 12345)
    await program.order(c, [line("server-business", 2, 200000)], placed_at="2026-03-01T10:00:00Z")
    program.at("2026-04-01T00:00:00Z")
    statement = next(s for s in (await _close(program, "2026-Q1"))["statements"] if s["partner_id"] == p[0])
    url = f"/v1/partners/{p[0]}/statements/{statement['id']}"
    as_json = (await program.client.get(url, headers=program.api.bearer(p[1]))).json()
    as_csv = await program.client.get(f"{url}/csv", headers=program.api.bearer(p[1]))
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [
        {
            "money_entry_id": int(r["money_entry_id"]),
            "effective_at": r["effective_at"].replace("+00:00", "Z"),
            "order_id": r["order_id"] or None,
            "customer": r["customer"] or None,
            "rule": r["rule"],
            "amount": int(r["amount"]),
            "label": r["label"] or None,
            "explanation": r["explanation"],
        }
        for r in rows
    ] == as_json["lines"]
    assert sum(int(r["amount"]) for r in rows) == as_json["lines_total"] == 2469 + 40000
    export = await program.client.get("/v1/quarters/2026-Q1/statements.csv", headers=program.api.admin)
    exported = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["statement_id"], int(r["payable_amount"])) for r in exported] == [(statement["id"], 42469)]
    _other, other_key = await program.partner()
    assert (await program.client.get(url, headers=program.api.bearer(other_key))).status_code == 404


async def test_partner_sees_the_next_payout(program: Program) -> None:
    p, c, _ = await _referral(program, "2026-02-01T10:00:00Z", 10000)
    program.at("2026-03-01T00:00:00Z")
    forecast = (
        await program.client.get(f"/v1/partners/{p[0]}/payout-forecast", headers=program.api.bearer(p[1]))
    ).json()["items"]
    assert forecast == [
        {
            "currency": "EUR",
            "payout_date": "2026-04-25",
            "expected_amount": 2000,
            "unpaid_statements": [],
            "accruing": 2000,
        }
    ]
    program.at("2026-04-02T00:00:00Z")
    await _close(program, "2026-Q1")
    await program.order(c, [line("desktop", 1, 5000)], placed_at="2026-04-05T00:00:00Z")
    forecast = (
        await program.client.get(f"/v1/partners/{p[0]}/payout-forecast", headers=program.api.bearer(p[1]))
    ).json()["items"]
    assert forecast[0]["payout_date"] == "2026-04-25" and forecast[0]["expected_amount"] == 2000
    assert forecast[0]["accruing"] == 1000 and len(forecast[0]["unpaid_statements"]) == 1


async def test_status_as_of_a_past_date_comes_from_the_ledgers(program: Program) -> None:
    p, c, order_id = await _referral(program, "2026-02-01T10:00:00Z", 10000, line_id="d")
    await program.order(c, [line("server-enterprise", 1, 100000)], placed_at="2026-03-01T10:00:00Z")
    await program.refund(order_id, [("d", 10000)], at="2026-03-10T00:00:00Z")

    async def as_of(moment: str) -> dict[str, Any]:
        response = await program.client.get(
            f"/v1/partners/{p[0]}/status?as_of={moment}", headers=program.api.bearer(p[1])
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    before = await as_of("2026-01-15T00:00:00Z")
    assert before["active_points"] == 0 and before["level"] == "affiliate" and before["commission_balances"] == {}
    feb = await as_of("2026-02-01T10:00:00Z")
    assert feb["active_points"] == 1 and feb["commission_balances"] == {"EUR": 2000}
    march = await as_of("2026-03-05T00:00:00Z")
    assert march["active_points"] == 6 and march["commission_balances"] == {"EUR": 22000}
    now = await program.status(p)
    assert now["active_points"] == 5 and now["commission_balances"] == {"EUR": 20000}


async def test_overview_counts_what_the_program_holds(program: Program) -> None:
    p, c, _ = await _referral(program, "2026-02-01T10:00:00Z", 10000)
    q = await program.partner()
    refused = await program.register(q, c)
    assert refused.status_code == 409
    await program.order(Customer.new(), [line("nope", 1, 1)], placed_at="2026-02-02T00:00:00Z", expect=202)
    overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
    assert overview["partners_by_status"] == {"active": 2}
    assert overview["partners_by_level"] == {"silver": 1, "affiliate": 1}
    assert {d["key"]: d["count"] for d in overview["points_distribution"]}["1-159"] == 1
    assert overview["registrations_by_state"] == {"converted": 1}
    assert overview["refusals_by_reason"] == {"already_a_customer": 1}
    assert overview["parked_webhook_events"] == {"unknown_sku": 1}
    assert overview["top_partners_by_points"][0]["partner_id"] == p[0]
    company = (await program.client.get(f"/v1/partners/{p[0]}", headers=program.api.admin)).json()["company"]
    assert overview["top_partners_by_commission"][0] == {
        "partner_id": p[0],
        "company": company,
        "value": 2000,
        "currency": "EUR",
    }
    later = (
        await program.client.get("/v1/dashboards/overview?from=2026-06-01T00:00:00Z", headers=program.api.admin)
    ).json()
    assert later["registrations_by_state"] == {} and later["refusals_by_reason"] == {}
