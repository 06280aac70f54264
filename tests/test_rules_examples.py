"""Worked examples E1-E8 of program-rules.md, through the HTTP API."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.program import Customer, Program, line, t


@pytest.fixture
def program(api: Api, delivery: str) -> Program:
    """Store events the test delivers are applied one by one, or together (`delivery`: both ways)."""
    return Program(api)


async def test_e1_policy_example_referral(program: Program) -> None:
    p = await program.partner("2026-01-05T09:00:00Z")
    c = Customer.new()
    assert (await program.register(p, c, at="2026-01-10T09:00:00Z")).status_code == 201
    await program.order(
        c,
        [line("desktop", 2, 96000, licence_id="lic-e1-d", term_end=t("2027-02-01T10:00:00Z"))],
        placed_at="2026-02-01T10:00:00Z",
    )
    await program.order(
        c,
        [line("server-enterprise", 1, 300000, licence_id="lic-e1-s", term_end=t("2027-06-15T10:00:00Z"))],
        placed_at="2026-06-15T10:00:00Z",
    )
    assert await program.total_points(p) == 7
    assert await program.total_money(p) == 19200 + 60000  # 192 EUR + 600 EUR = 792 EUR
    # The 2 Desktop licences renewed exactly 12 months after the first order: the window ended then.
    await program.order(
        c,
        [line("desktop", 2, 96000, kind="renewal", licence_id="lic-e1-d", term_end=t("2028-02-01T10:00:00Z"))],
        placed_at="2027-02-01T10:00:00Z",
    )
    assert await program.total_points(p) == 7
    assert await program.total_money(p) == 79200
    status = await program.status(p)
    assert status["active_points"] == 7 and status["level"] == "silver"
    assert status["commission_balances"] == {"EUR": 79200}


async def test_e2_order_on_day_60_earns_nothing_one_minute_before_does(program: Program) -> None:
    p = await program.partner()
    late, in_time = Customer.new("Late"), Customer.new("InTime")
    await program.register(p, late, at="2026-01-10T00:00:00Z")
    await program.register(p, in_time, at="2026-01-10T00:00:00Z")
    await program.order(late, [line("desktop", 1, 48000)], placed_at="2026-03-11T00:00:00Z")
    assert await program.total_points(p) == 0
    await program.order(in_time, [line("desktop", 1, 48000)], placed_at="2026-03-10T23:59:00Z")
    assert await program.total_points(p) == 1
    relationships = (await program.client.get(f"/v1/partners/{p[0]}/relationships", headers=program.api.admin)).json()[
        "items"
    ]
    assert [r["company"] for r in relationships] == [in_time.company]


async def test_e3_order_before_registration_earns_nothing_and_blocks_later_registrations(program: Program) -> None:
    p = await program.partner()
    other = await program.partner()
    c = Customer.new()
    program.at("2026-01-25T09:00:00Z")
    assert (await program.register(p, c)).status_code == 201
    # An order placed before the registration arrives late: it earns nothing...
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-01-20T09:00:00Z")
    assert await program.total_points(p) == 0
    # ...and a later order in the window does not qualify either: the customer had bought before.
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-02-10T09:00:00Z")
    assert await program.total_points(p) == 0
    # ...and the customer is now an existing customer: a later registration by anyone is refused.
    refused = await program.register(other, c)
    assert refused.status_code == 409 and refused.json()["code"] == "already_a_customer"


async def test_e4_reseller_crosses_into_gold_and_gets_the_gold_rate_next(program: Program) -> None:
    r = await program.partner()
    c = Customer.new()
    await program.register(r, c, at="2026-01-10T09:00:00Z")
    # 158 points: 39 Server Business (156) + 2 Desktop (2), bought for its customer.
    await program.order(
        c,
        [line("server-business", 39, 800, discount=200), line("desktop", 2, 0)],
        placed_at="2026-01-20T09:00:00Z",
        buyer=r[0],
    )
    status = await program.status(r)
    assert status["active_points"] == 158 and status["level"] == "silver" and status["discount_rate_bp"] == 2000
    quote = await program.client.post(
        "/v1/pricing/quote",
        json={
            "partner_id": r[0],
            "customer": c.store(),
            "currency": "EUR",
            "lines": [{"sku": "server-business", "quantity": 1, "kind": "new", "list_amount": 150000}],
        },
        headers=program.api.bearer(await program.api.issue_key("store", ["store"])),
    )
    assert quote.status_code == 200, quote.text
    assert quote.json()["rate_bp"] == 2000 and quote.json()["lines"][0]["discount_amount"] == 30000
    await program.order(
        c, [line("server-business", 1, 120000, discount=30000)], placed_at="2026-01-21T09:00:00Z", buyer=r[0]
    )
    status = await program.status(r)
    assert status["active_points"] == 162 and status["level"] == "gold" and status["discount_rate_bp"] == 2500
    history = (await program.client.get(f"/v1/partners/{r[0]}/level-history", headers=program.api.bearer(r[1]))).json()[
        "items"
    ]
    assert [(h["from_level"], h["to_level"]) for h in history] == [("affiliate", "silver"), ("silver", "gold")]
    # The next purchase is priced at 25 %; the store applied it, so no mismatch is flagged.
    await program.order(c, [line("desktop", 1, 36000, discount=12000)], placed_at="2026-01-22T09:00:00Z", buyer=r[0])
    mismatches = (await program.client.get("/v1/discount-mismatches", headers=program.api.admin)).json()["items"]
    assert [m for m in mismatches if m["partner_id"] == r[0] and m["reported_amount"] == 12000] == []


async def test_e5_lapse_drops_gold_to_silver(program: Program) -> None:
    s = await program.partner()
    c = Customer.new()
    await program.register(s, c, at="2026-01-10T09:00:00Z")
    await program.order(
        c,
        [
            line("server-business", 38, 0),
            line("desktop", 5, 0),
            line("server-enterprise", 1, 0, licence_id="lic-e5", term_end=t("2026-06-01T00:00:00Z")),
        ],
        placed_at="2026-01-20T09:00:00Z",
        buyer=s[0],
    )
    status = await program.status(s)
    assert status["active_points"] == 162 and status["level"] == "gold"
    await program.lapse("lic-e5", at="2026-06-01T00:00:00Z")
    status = await program.status(s)
    assert status["active_points"] == 157 and status["level"] == "silver"
    entries = await program.points(s)
    assert entries[-1]["rule"] == "R10" and entries[-1]["points"] == -5
    assert entries[-1]["effective_at"] == "2026-06-01T00:00:00Z"


async def test_e6_gold_reseller_renewal_gets_25_percent_and_no_points(program: Program) -> None:
    reseller = await program.partner()
    c = Customer.new()
    await program.register(reseller, c, at="2026-01-10T09:00:00Z")
    await program.order(
        c,
        [line("server-business", 50, 0, licence_id="lic-e6", term_end=t("2027-01-20T09:00:00Z"))],
        placed_at="2026-01-20T09:00:00Z",
        buyer=reseller[0],
    )
    assert (await program.status(reseller))["active_points"] == 200
    await program.order(
        c,
        [
            line(
                "server-business",
                50,
                150000,
                kind="renewal",
                licence_id="lic-e6",
                discount=50000,
                term_end=t("2028-01-20T09:00:00Z"),
            )
        ],
        placed_at="2027-01-10T09:00:00Z",
        buyer=reseller[0],
    )
    assert (await program.status(reseller))["active_points"] == 200
    mismatches = (await program.client.get("/v1/discount-mismatches", headers=program.api.admin)).json()["items"]
    renewal = [m for m in mismatches if m["partner_id"] == reseller[0] and m["reported_amount"] == 50000]
    assert renewal == []  # 25 % of 200000 = 50000: what the store applied


async def test_e7_same_webhook_fifty_times_one_set_of_entries(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    from tests.program import order_event

    event = order_event(c, [line("desktop", 2, 96000)], placed_at=t("2026-02-01T10:00:00Z"))
    responses = [await program.send(event, webhook_id="msg_e7") for _ in range(50)]
    again = await program.send(event)  # the same order under a new webhook id
    await program.settle()
    statuses = [response.json()["status"] for response in responses]
    assert statuses[0] == "applied" and set(statuses[1:]) == {"duplicate"}
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert await program.total_points(p) == 2 and await program.total_money(p) == 19200


async def test_e8_full_refund_after_payment_reverses_commission_and_points(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    await program.order(c, [line("desktop", 2, 96000)], placed_at="2026-02-01T10:00:00Z")
    order = await program.order(
        c, [line("server-enterprise", 1, 300000, line_id="se")], placed_at="2026-06-15T10:00:00Z"
    )
    await program.refund(order["event"]["data"]["order_id"], [("se", 300000)], at="2026-08-02T10:00:00Z")
    money = await program.money(p)
    assert money[-1]["amount"] == -60000 and money[-1]["rule"] == "R14"
    assert money[-1]["effective_at"] == "2026-08-02T10:00:00Z"  # Q3, whatever was paid for Q2
    points = await program.points(p)
    assert points[-1]["points"] == -5 and points[-1]["rule"] == "R14"
    assert await program.total_points(p) == 2 and await program.total_money(p) == 19200


async def test_e10_commission_on_the_amount_net_of_tax_and_a_refund_reverses_its_share(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    # list 1,000.00, discount 200.00, tax 160.00: paid 960.00, of which 800.00 net of tax.
    order = await program.order(
        c,
        [line("server-business", 1, 96000, discount=20000, tax=16000, list_amount=100000, line_id="sb")],
        placed_at="2026-02-01T10:00:00Z",
    )
    money = await program.money(p)
    assert [(e["rule"], e["amount"]) for e in money] == [("R11", 16000)]  # 20 % of 800.00 = 160.00
    assert "80000 paid net of tax" in money[0]["explanation"]
    await program.refund(order["event"]["data"]["order_id"], [("sb", 48000)], at="2026-02-10T10:00:00Z")
    money = await program.money(p)
    assert [(e["rule"], e["amount"]) for e in money] == [("R11", 16000), ("R14", -8000)]  # half: -80.00
    assert await program.total_money(p) == 8000
    assert await program.total_points(p) == 4  # floor(480 x 1 / 960) = 0 licences refunded: points stand
