"""The policy's limits added for issue 13: tax and the store's amounts (R23), own company (R22),
quarter order and overdue statements (R16), early lapses (R10), not-for-resale purpose (R17),
the brand in company names (R20) and directory moderation (R18)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import Api
from tests.program import Customer, Program, line, order_event, t


@pytest.fixture
def program(api: Api) -> Program:
    return Program(api)


async def _scalar(api: Api, sql: str, **params: Any) -> Any:
    assert api.connection is not None
    return (await api.connection.execute(text(sql), params)).scalar_one()


# --- R23 tax and the store's amounts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"paid_amount": 95000}, "paid_amount 95000 is not list_amount - discount_amount + tax_amount = 96000"),
        ({"discount_amount": 10**13, "paid_amount": 0}, "discount_amount 10000000000000 is above list_amount 100000"),
        ({"licence_id": None}, "licence_id is required"),
        ({"term_end": "1970-01-01T00:00:00Z"}, "term_end 1970-01-01T00:00:00+00:00 is not after placed_at"),
        ({"tax_amount": None}, "Field required"),
        ({"tax_amount": -1}, "Input should be greater than or equal to 0"),
    ],
)
async def test_r23_malformed_lines_are_422_kept_raw_and_apply_nothing(
    program: Program, change: dict[str, Any], message: str
) -> None:
    program.at("2026-02-01T10:01:00Z")
    good = line("desktop", 1, 96000, discount=20000, tax=16000, term_end=t("2027-02-01T10:00:00Z"))
    bad = {**good, **change}
    for key in [k for k, v in change.items() if v is None]:
        del bad[key]
    event = order_event(Customer.new(), [bad], placed_at=t("2026-02-01T10:00:00Z"))
    response = await program.send(event)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "webhook_event_malformed"
    assert any(message in e["message"] for e in problem["errors"]), problem["errors"]
    assert await _scalar(program.api, "SELECT count(*) FROM rejected_webhook_events") == 1
    assert await _scalar(program.api, "SELECT count(*) FROM orders") == 0
    stored = await _scalar(program.api, "SELECT body FROM rejected_webhook_events")
    assert json.loads(stored) == event  # the raw body is kept


async def test_r23_currencies_are_iso_4217_codes_that_exist(program: Program) -> None:
    program.at("2026-02-01T10:01:00Z")
    c = Customer.new()
    refused = await program.send(
        order_event(c, [line("desktop", 1, 48000)], placed_at=t("2026-02-01T10:00:00Z"), currency="XXQ")
    )
    assert refused.status_code == 422
    assert [e["message"] for e in refused.json()["errors"]] == ["Value error, currency XXQ is not an ISO 4217 code"]
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-02-01T10:00:00Z", currency="CHF")
    quote = await program.client.post(
        "/v1/pricing/quote",
        json={
            "partner_id": (await program.partner())[0],
            "customer": c.store(),
            "currency": "ABC",
            "lines": [{"sku": "desktop", "quantity": 1, "kind": "new", "list_amount": 48000}],
        },
        headers=program.api.bearer(await program.api.issue_key("store", ["store"])),
    )
    assert quote.status_code == 422


async def test_r23_commission_on_net_of_tax_for_lifetime_commission(program: Program) -> None:
    """R13's base is net of tax too: 20 % (Silver) of 1,000.00 net of 200.00 tax."""
    r = await program.partner()
    c = Customer.new()
    await program.register(r, c, at="2026-01-10T09:00:00Z")
    await program.order(c, [line("desktop", 1, 38400, discount=9600)], placed_at="2026-01-20T09:00:00Z", buyer=r[0])
    await program.order(c, [line("server-business", 1, 120000, tax=20000)], placed_at="2026-02-20T09:00:00Z")
    money = await program.money(r)
    assert [(e["rule"], e["amount"]) for e in money] == [("R13", 20000)]


async def test_r23_an_old_parked_body_without_tax_replays_and_its_order_redelivered_is_a_duplicate(
    program: Program,
) -> None:
    """Bodies stored before `tax_amount` existed count as tax 0: a replay applies them, and the same
    order delivered again with `"tax_amount": 0` is a duplicate, not a conflict."""
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    event = order_event(c, [line("desktop", 2, 96000, line_id="d")], placed_at=t("2026-02-01T10:00:00Z"))
    event["data"]["buyer"] = {"type": "partner", "partner_id": "00000000-0000-0000-0000-000000000000"}
    parked = await program.send(event)
    assert parked.status_code == 202 and parked.json()["reason_code"] == "unknown_partner"
    event_id = parked.json()["event_id"]
    # The body as it was stored before this release: no tax_amount on its line.
    old = json.loads(json.dumps(event))
    old["data"]["buyer"] = {"type": "customer"}
    del old["data"]["lines"][0]["tax_amount"]
    assert program.api.connection is not None
    await program.api.connection.execute(
        text("UPDATE webhook_events SET body = :body WHERE id = :id"), {"body": json.dumps(old), "id": event_id}
    )
    replayed = await program.client.post(f"/v1/webhook-events/{event_id}/replay", headers=program.api.admin)
    assert replayed.status_code == 200 and replayed.json()["status"] == "applied", replayed.text
    assert await program.total_points(p) == 2 and await program.total_money(p) == 19200
    assert (
        await _scalar(program.api, "SELECT tax_amount FROM order_lines WHERE order_id = :o", o=old["data"]["order_id"])
        == 0
    )
    again = json.loads(json.dumps(old))
    again["data"]["lines"][0]["tax_amount"] = 0
    duplicate = await program.send(again)
    assert duplicate.status_code == 200
    assert (duplicate.json()["status"], duplicate.json()["reason_code"]) == ("duplicate", "same_content")
    again["data"]["lines"][0]["tax_amount"] = 16000
    again["data"]["lines"][0]["list_amount"] = 80000
    conflict = await program.send(again)
    assert conflict.status_code == 202 and conflict.json()["reason_code"] == "order_content_conflict"
    assert await program.total_points(p) == 2 and await program.total_money(p) == 19200
