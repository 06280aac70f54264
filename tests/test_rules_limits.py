"""The policy's limits added for issue 13: tax and the store's amounts (R23), own company (R22),
quarter order and overdue statements (R16), early lapses (R10), not-for-resale purpose (R17),
the brand in company names (R20) and directory moderation (R18)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import Api, watch_applied_together
from tests.program import Customer, Program, line, order_event, t


@pytest.fixture
def program(api: Api, delivery: str) -> Program:
    """Store events the test delivers are applied one by one, or together (`delivery`: both ways)."""
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
        ({"tax_amount": None}, "This value is required."),
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


async def _stored_parked(program: Program, event: dict[str, Any], webhook_id: str, at: str) -> int:
    """An event stored and parked by an earlier release (raw bodies are never edited)."""
    assert program.api.connection is not None
    return int(
        (
            await program.api.connection.execute(
                text(
                    "INSERT INTO webhook_events (webhook_id, event_type, subject, body, received_at, status, "
                    "reason_code, reason, attempts, failures) VALUES (:wid, 'order.paid', :subject, :body, "
                    ":at, 'parked', 'unknown_sku', 'the SKU was unknown then', 1, 0) RETURNING id"
                ),
                {
                    "wid": webhook_id,
                    "subject": f"order:{event['data']['order_id']}",
                    "body": json.dumps(event),
                    "at": t(at),
                },
            )
        ).scalar_one()
    )


async def test_r23_new_and_renewal_lines_need_a_term_end_and_older_bodies_without_one_replay(
    program: Program,
) -> None:
    p = await program.partner()
    c = Customer.new("Termless")
    await program.register(p, c, at="2026-01-12T09:00:00Z")
    program.at("2026-02-03T11:01:00Z")
    for kind in ("new", "renewal"):
        event = order_event(
            c, [line("desktop", 1, 36000, kind=kind, line_id="t1")], placed_at=t("2026-02-03T11:00:00Z")
        )
        del event["data"]["lines"][0]["term_end"]
        refused = await program.send(event)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "webhook_event_malformed"
        assert [e["message"] for e in refused.json()["errors"]] == [
            f"Line t1: term_end is required on a {kind} line (the store sells yearly subscriptions)."
        ]
    kept = await _scalar(program.api, "SELECT body FROM rejected_webhook_events ORDER BY id DESC LIMIT 1")
    assert json.loads(kept) == event  # the raw body is kept
    assert await _scalar(program.api, "SELECT count(*) FROM orders") == 0
    # Bodies stored before term_end was required replay as they did: their licences have no term end.
    old = []
    for n, placed in enumerate(("2026-02-04T11:00:00Z", "2026-02-05T11:00:00Z")):
        event = order_event(c, [line("desktop", 2, 72000, licence_id=f"lic-termless-{n}")], placed_at=t(placed))
        del event["data"]["lines"][0]["term_end"]
        old.append(await _stored_parked(program, event, f"msg_termless_{n}", placed))
    await program.order(c, [line("desktop", 1, 36000, licence_id="lic-termed")], placed_at="2026-02-06T11:00:00Z")
    for event_id in old:
        replayed = await program.client.post(f"/v1/webhook-events/{event_id}/replay", headers=program.api.admin)
        assert replayed.status_code == 200 and replayed.json()["status"] == "applied", replayed.text
    assert await program.total_points(p) == 5
    # Admins list the licences without a term end (they never lapse by themselves), page by page.
    first = await program.client.get("/v1/licences?without_term_end=true&limit=1", headers=program.api.admin)
    assert first.status_code == 200, first.text
    assert [(i["licence_id"], i["term_end"], i["partner_id"]) for i in first.json()["items"]] == [
        ("lic-termless-1", None, p[0])
    ]
    assert first.json()["has_more"] is True
    rest = await program.client.get(
        f"/v1/licences?without_term_end=true&limit=1&cursor={first.json()['next_cursor']}", headers=program.api.admin
    )
    assert [i["licence_id"] for i in rest.json()["items"]] == ["lic-termless-0"]
    assert (rest.json()["has_more"], rest.json()["next_cursor"]) == (False, None)
    every = (await program.client.get("/v1/licences?status=active", headers=program.api.admin)).json()["items"]
    assert [(i["licence_id"], i["term_end"]) for i in every] == [
        ("lic-termless-1", None),
        ("lic-termless-0", None),
        ("lic-termed", "2027-02-06T11:00:00Z"),
    ]
    partner_key = program.api.bearer(p[1])
    assert (await program.client.get("/v1/licences", headers=partner_key)).status_code == 403


async def test_r23_currencies_are_iso_4217_codes_that_exist(program: Program) -> None:
    program.at("2026-02-01T10:01:00Z")
    c = Customer.new()
    refused = await program.send(
        order_event(c, [line("desktop", 1, 48000)], placed_at=t("2026-02-01T10:00:00Z"), currency="XXQ")
    )
    assert refused.status_code == 422
    assert [e["message"] for e in refused.json()["errors"]] == ["Currency XXQ is not an ISO 4217 code."]
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


async def test_r23_currencies_that_are_not_money_are_refused(program: Program) -> None:
    """Fund, metal, unit-of-account and test codes exist in ISO 4217 but nobody pays with them: orders,
    quotes and adjustments refuse them, and the published schemas say which codes are accepted."""
    p = await program.partner()
    c = Customer.new("Bullion")
    program.at("2026-03-09T14:01:00Z")
    store = program.api.bearer(await program.api.issue_key("store", ["store"]))
    for code in ("XTS", "XXX", "XAU", "XDR", "CHE", "USN"):
        refused = await program.send(
            order_event(c, [line("desktop", 1, 24000)], placed_at=t("2026-03-09T14:00:00Z"), currency=code)
        )
        assert refused.status_code == 422, (code, refused.text)
        assert [e["message"] for e in refused.json()["errors"]] == [
            f"Currency {code} is not an ISO 4217 code of money (it is a fund, metal, unit of account or test code)."
        ]
        quote = await program.client.post(
            "/v1/pricing/quote",
            json={
                "partner_id": p[0],
                "customer": c.store(),
                "currency": code,
                "lines": [{"sku": "desktop", "quantity": 1, "kind": "new", "list_amount": 24000}],
            },
            headers=store,
        )
        assert quote.status_code == 422 and quote.json()["errors"][0]["field"] == "body.currency", quote.text
        adjustment = await program.client.post(
            f"/v1/partners/{p[0]}/adjustments",
            json={"kind": "money", "amount": 1500, "currency": code, "reason": "gold bonus"},
            headers=program.api.admin,
        )
        assert adjustment.status_code == 422 and adjustment.json()["errors"][0]["field"] == "body.currency"
    assert await _scalar(program.api, "SELECT count(*) FROM rejected_webhook_events") == 6
    # Currencies whose code starts with X are money too when a country pays with them.
    for code in ("XOF", "XCD"):
        await program.order(c, [line("desktop", 1, 24000)], placed_at="2026-03-09T14:00:00Z", currency=code)
    schemas = (await program.client.get("/openapi.json")).json()["components"]["schemas"]
    for pattern in (
        schemas["OrderPaidData"]["properties"]["currency"]["pattern"],
        schemas["QuoteRequest"]["properties"]["currency"]["pattern"],
    ):
        assert re.fullmatch(pattern, "EUR") and re.fullmatch(pattern, "XOF")
        assert not any(re.fullmatch(pattern, code) for code in ("XTS", "XXX", "XAU", "XAG", "BOV", "UYW", "ABC"))


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
    old = order_event(c, [line("desktop", 2, 96000, line_id="d")], placed_at=t("2026-02-01T10:00:00Z"))
    del old["data"]["lines"][0]["tax_amount"]  # as the store sent it before this release
    assert program.api.connection is not None  # a parked event stored then (raw bodies are never edited)
    event_id = (
        await program.api.connection.execute(
            text(
                "INSERT INTO webhook_events (webhook_id, event_type, subject, body, received_at, status, "
                "reason_code, reason, attempts, failures) VALUES ('msg_old', 'order.paid', :subject, :body, "
                ":at, 'parked', 'unknown_sku', 'SKU desktop was unknown then', 1, 0) RETURNING id"
            ),
            {"subject": f"order:{old['data']['order_id']}", "body": json.dumps(old), "at": t("2026-02-01T10:00:30Z")},
        )
    ).scalar_one()
    replayed = await program.client.post(f"/v1/webhook-events/{event_id}/replay", headers=program.api.admin)
    assert replayed.status_code == 200 and replayed.json()["status"] == "applied", replayed.text
    assert await program.total_points(p) == 2 and await program.total_money(p) == 19200
    tax = await _scalar(
        program.api, "SELECT tax_amount FROM order_lines WHERE order_id = :o", o=old["data"]["order_id"]
    )
    assert tax == 0
    again = json.loads(json.dumps(old))
    again["data"]["lines"][0]["tax_amount"] = 0
    duplicate = await program.send(again)
    again = json.loads(json.dumps(again))
    again["data"]["lines"][0]["tax_amount"] = 16000
    again["data"]["lines"][0]["list_amount"] = 80000
    conflict = await program.send(again)
    assert await program.total_points(p) == 2 and await program.total_money(p) == 19200
    assert duplicate.status_code == 200
    assert (duplicate.json()["status"], duplicate.json()["reason_code"]) == ("duplicate", "same_content")
    assert conflict.status_code == 202 and conflict.json()["reason_code"] == "order_content_conflict"


# --- R22 own company ---------------------------------------------------------------------------


async def test_r22_vat_ids_are_validated_per_country_with_the_reason(program: Program) -> None:
    program.at("2026-01-05T09:00:00Z")
    bad = await program.client.post("/v1/partners", json=program.api.registration(country="FR", vat_id="FR40303265046"))
    assert bad.status_code == 422
    assert bad.json()["code"] == "vat_id_invalid"
    assert bad.json()["detail"] == (
        "vat_id FR40303265046 is not a valid FR VAT id: The number's checksum or check digit is invalid."
    )
    partner, key = await program.api.register(country="FR", vat_id="fr 40 303 265 045")
    assert partner["vat_id"] == "FR40303265045"
    changed = await program.client.patch(
        f"/v1/partners/{partner['id']}", json={"vat_id": "DE136695977"}, headers=program.api.bearer(key)
    )
    assert changed.status_code == 422 and changed.json()["code"] == "vat_id_invalid"
    changed = await program.client.patch(
        f"/v1/partners/{partner['id']}", json={"vat_id": "DE 136 695 976"}, headers=program.api.bearer(key)
    )
    assert changed.status_code == 200 and changed.json()["vat_id"] == "DE136695976"
    # Customers' VAT ids are checked the same way.
    c = Customer(company="Typo SA", vat_id="FR40303265046", domain=None, store_customer_id="cus_typo")
    refused = await program.register((partner["id"], key), c)
    assert refused.status_code == 422 and refused.json()["code"] == "vat_id_invalid"


async def test_r22_registering_the_partners_own_company_is_refused(program: Program) -> None:
    program.at("2026-01-05T09:00:00Z")
    partner, key = await program.api.register(
        country="FR",
        website="https://www.acme22.example/about",
        contact_email="jeanne@acme22-group.example",
        vat_id="FR40303265045",
    )
    p = (partner["id"], key)
    program.at("2026-01-10T09:00:00Z")
    cases = {
        "eu.acme22.example": "domain eu.acme22.example",  # a subdomain of the website's host
        "acme22-group.example": "domain acme22-group.example",  # the contact e-mail's domain
    }
    for domain, matched in cases.items():
        refused = await program.register(p, Customer(company="Acme 22", domain=domain, store_customer_id=None))
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "own_company"
        assert refused.json()["detail"] == (
            f"This is your own company ({matched}): a partner's own company is never its customer."
        )
    by_vat = Customer(company="Acme 22 bis", vat_id="FR 40303265045", domain=None, store_customer_id="cus_a22")
    refused = await program.register(p, by_vat)
    assert refused.status_code == 422 and refused.json()["code"] == "own_company"
    # A look-alike domain is another company.
    assert (await program.register(p, Customer(company="Notacme", domain="notacme22.example"))).status_code == 201
    refusals = (await program.client.get("/v1/registration-refusals", headers=program.api.admin)).json()["items"]
    assert [r["code"] for r in refusals] == ["own_company"] * 3
    assert await _scalar(program.api, "SELECT count(*) FROM customers") == 1  # no customer made for them


async def test_r22_free_mail_is_not_the_partners_own_domain(program: Program) -> None:
    program.at("2026-01-05T09:00:00Z")
    partner, key = await program.api.register(website=None, contact_email="solo.partner@gmail.com")
    c = Customer(company="Gmail Buyer SA", domain=None, store_customer_id="cus_gm")
    assert (await program.register((partner["id"], key), c, at="2026-01-10T09:00:00Z")).status_code == 201


async def _store_key(program: Program) -> dict[str, str]:
    return program.api.bearer(await program.api.issue_key("store", ["store"]))


async def test_r22_own_company_order_earns_nothing_is_flagged_and_quoted_without_discount(program: Program) -> None:
    program.at("2026-01-05T09:00:00Z")
    partner, key = await program.api.register(website="https://reseller22.example", country="FR")
    p = (partner["id"], key)
    # Registered while it was another company's; then the partner moved its website to that domain.
    own = Customer(company="Reseller 22 Labs", domain="labs.r22.example", store_customer_id="cus_r22")
    assert (await program.register(p, own, at="2026-01-10T09:00:00Z")).status_code == 201
    program.at("2026-01-12T09:00:00Z")
    moved = await program.client.patch(
        f"/v1/partners/{p[0]}", json={"website": "https://www.r22.example"}, headers=program.api.bearer(key)
    )
    assert moved.status_code == 200
    quote = await program.client.post(
        "/v1/pricing/quote",
        json={
            "partner_id": p[0],
            "customer": own.store(),
            "currency": "EUR",
            "lines": [{"sku": "server-business", "quantity": 1, "kind": "new", "list_amount": 150000}],
        },
        headers=await _store_key(program),
    )
    assert quote.status_code == 200
    assert (quote.json()["no_discount_reason"], quote.json()["rate_bp"]) == ("own_company", 0)
    assert quote.json()["lines"][0]["discount_amount"] == 0
    # The store applied the Silver discount anyway.
    order = await program.order(
        own,
        [line("server-business", 1, 120000, discount=30000, line_id="sb")],
        placed_at="2026-01-20T09:00:00Z",
        buyer=p[0],
    )
    assert await program.total_points(p) == 0 and await program.total_money(p) == 0
    assert order["receipt"]["status"] == "applied" and order["receipt"]["reason_code"] == "own_company"
    flags = (await program.client.get("/v1/order-flags", headers=program.api.admin)).json()
    assert flags["has_more"] is False and flags["next_cursor"] is None
    order_id = order["event"]["data"]["order_id"]
    assert [(f["kind"], f["order_id"], f["partner_id"]) for f in flags["items"]] == [
        ("discount_mismatch", order_id, p[0]),
        ("own_company", order_id, p[0]),
    ]
    assert flags["items"][1]["detail"] == "the end customer is the partner's own company (domain labs.r22.example)"
    assert flags["items"][0]["detail"] == (
        "line sb: expected a discount of 0 (0 %, no discount applies: own_company), the store applied 30000"
    )
    only = (await program.client.get("/v1/order-flags?kind=own_company", headers=program.api.admin)).json()
    assert [f["kind"] for f in only["items"]] == ["own_company"]
    events = (
        (
            await program.api.connection.execute(  # type: ignore[union-attr]
                text("SELECT payload FROM domain_events WHERE type = 'order.flagged' ORDER BY id")
            )
        )
        .scalars()
        .all()
    )
    assert [(json.loads(e) if isinstance(e, str) else e)["kind"] for e in events] == [
        "own_company",
        "discount_mismatch",
    ]
    overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
    assert overview["order_flags"] == {"discount_mismatch": 1, "own_company": 1}
    # An admin resolves it with a reason; once.
    flag_id = only["items"][0]["id"]
    program.at("2026-01-21T09:00:00Z")
    resolved = await program.client.post(
        f"/v1/order-flags/{flag_id}/resolve", json={"reason": "internal test purchase"}, headers=program.api.admin
    )
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["resolution"], resolved.json()["resolved_at"]) == (
        "internal test purchase",
        "2026-01-21T09:00:00Z",
    )
    again = await program.client.post(
        f"/v1/order-flags/{flag_id}/resolve", json={"reason": "again"}, headers=program.api.admin
    )
    assert again.status_code == 409 and again.json()["code"] == "order_flag_resolved"
    unresolved = (await program.client.get("/v1/order-flags?resolved=false", headers=program.api.admin)).json()
    assert [f["kind"] for f in unresolved["items"]] == ["discount_mismatch"]
    overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
    assert overview["order_flags"] == {"discount_mismatch": 1}
    partner_view = await program.client.get("/v1/order-flags", headers=program.api.bearer(key))
    assert partner_view.status_code == 403


async def test_r22_a_website_moved_through_the_directory_profile_keeps_counting(program: Program) -> None:
    """The directory profile changes the website too: every website set there is declared, with its dates."""
    program.at("2026-03-02T08:00:00Z")
    partner, key = await program.api.register(country="FR", website="https://first-dir22.example")
    p = (partner["id"], key)
    for day, site in (("2026-03-09", "https://second-dir22.example"), ("2026-03-16", "https://third-dir22.example")):
        program.at(f"{day}T08:00:00Z")
        moved = await program.client.patch(
            f"/v1/partners/{p[0]}/directory-profile", json={"website": site}, headers=program.api.bearer(key)
        )
        assert moved.status_code == 200, moved.text
    program.at("2026-03-23T08:00:00Z")
    for domain in ("first-dir22.example", "second-dir22.example", "third-dir22.example"):
        refused = await program.register(p, Customer(company=f"Shop {domain}", domain=domain, store_customer_id=None))
        assert refused.status_code == 422 and refused.json()["code"] == "own_company", (domain, refused.text)
    history = await program.client.get(f"/v1/partners/{p[0]}/identifiers", headers=program.api.bearer(key))
    websites = [
        (i["value"], i["declared_at"][:10], (i["withdrawn_at"] or "")[:10])
        for i in history.json()["items"]
        if i["value"].endswith("dir22.example")
    ]
    assert websites == [
        ("first-dir22.example", "2026-03-02", "2026-03-09"),
        ("second-dir22.example", "2026-03-09", "2026-03-16"),
        ("third-dir22.example", "2026-03-16", ""),
    ]


async def test_r22_identifiers_the_partner_declared_before_keep_counting(program: Program) -> None:
    """A website moved and a VAT id cleared stay the partner's own: registrations, quotes and orders
    check every identifier it ever declared, kept with the dates it held them."""
    program.at("2026-02-02T08:00:00Z")
    partner, key = await program.api.register(
        country="FR",
        website="https://www.oldhome-r22.example",
        contact_email="ops.r22@gmail.com",
        vat_id="FR40303265045",
    )
    p = (partner["id"], key)
    program.at("2026-02-09T08:00:00Z")
    moved = await program.client.patch(
        f"/v1/partners/{p[0]}",
        json={"website": "https://newhome-r22.example", "vat_id": None},
        headers=program.api.bearer(key),
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["website"], moved.json()["vat_id"]) == ("https://newhome-r22.example/", None)
    program.at("2026-02-16T08:00:00Z")
    old_domain = Customer(company="Old Home Shop", domain="shop.oldhome-r22.example", store_customer_id=None)
    old_vat = Customer(company="Old Home Holding", vat_id="FR40303265045", domain=None, store_customer_id="cus_oh22")
    for customer, matched in ((old_domain, "domain shop.oldhome-r22.example"), (old_vat, "VAT id FR40303265045")):
        refused = await program.register(p, customer)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["code"], refused.json()["detail"]) == (
            "own_company",
            f"This is your own company ({matched}): a partner's own company is never its customer.",
        )
    # The new website counts too, and another company is still a customer.
    new_domain = Customer(company="New Home", domain="newhome-r22.example", store_customer_id=None)
    assert (await program.register(p, new_domain)).json()["code"] == "own_company"
    other = Customer(company="Elsewhere 22", domain="elsewhere-r22.example", store_customer_id=None)
    assert (await program.register(p, other)).status_code == 201
    quote = await program.client.post(
        "/v1/pricing/quote",
        json={
            "partner_id": p[0],
            "customer": old_domain.store(),
            "currency": "EUR",
            "lines": [{"sku": "desktop", "quantity": 3, "kind": "new", "list_amount": 72000}],
        },
        headers=await _store_key(program),
    )
    assert quote.status_code == 200, quote.text
    assert (quote.json()["no_discount_reason"], quote.json()["lines"][0]["discount_amount"]) == ("own_company", 0)
    order = await program.order(
        old_vat, [line("desktop", 2, 48000, line_id="oh1")], placed_at="2026-02-20T08:00:00Z", buyer=p[0]
    )
    assert await program.total_points(p) == 0 and await program.total_money(p) == 0
    assert order["receipt"]["reason_code"] == "own_company"
    flags = (await program.client.get("/v1/order-flags?kind=own_company", headers=program.api.admin)).json()
    assert [(f["order_id"], f["partner_id"], f["detail"]) for f in flags["items"]] == [
        (
            order["event"]["data"]["order_id"],
            p[0],
            "the end customer is the partner's own company (VAT id FR40303265045)",
        )
    ]
    history = (await program.client.get(f"/v1/partners/{p[0]}/identifiers", headers=program.api.admin)).json()
    assert [(i["kind"], i["value"], i["declared_at"], i["withdrawn_at"]) for i in history["items"]] == [
        ("domain", "oldhome-r22.example", "2026-02-02T08:00:00Z", "2026-02-09T08:00:00Z"),
        ("vat", "FR40303265045", "2026-02-02T08:00:00Z", "2026-02-09T08:00:00Z"),
        ("domain", "newhome-r22.example", "2026-02-09T08:00:00Z", None),
    ]
    # Declaring the old website again opens a new period; the partner reads its own history.
    program.at("2026-03-02T08:00:00Z")
    back = await program.client.patch(
        f"/v1/partners/{p[0]}", json={"website": "https://oldhome-r22.example/"}, headers=program.api.bearer(key)
    )
    assert back.status_code == 200
    mine = (await program.client.get(f"/v1/partners/{p[0]}/identifiers", headers=program.api.bearer(key))).json()
    assert [(i["value"], i["withdrawn_at"]) for i in mine["items"][2:]] == [
        ("newhome-r22.example", "2026-03-02T08:00:00Z"),
        ("oldhome-r22.example", None),
    ]


async def test_r22_discount_mismatches_stay_as_a_deprecated_alias(program: Program) -> None:
    document = (await program.client.get("/openapi.json")).json()
    assert document["paths"]["/v1/discount-mismatches"]["get"]["deprecated"] is True
    assert "deprecated" not in document["paths"]["/v1/order-flags"]["get"]


# --- R16 quarter order and overdue statements ---------------------------------------------------


async def _referral_partner(program: Program, at: str = "2026-01-02T09:00:00Z") -> tuple[tuple[str, str], Customer]:
    p = await program.partner("2026-01-01T09:00:00Z")
    c = Customer.new()
    assert (await program.register(p, c, at=at)).status_code == 201
    return p, c


async def test_r16_a_quarter_is_not_closed_while_an_earlier_one_with_entries_is_open(program: Program) -> None:
    _p, c = await _referral_partner(program)
    await program.order(c, [line("desktop", 1, 10000)], placed_at="2026-02-01T09:00:00Z")  # Q1: 2000
    await program.order(c, [line("desktop", 1, 20000)], placed_at="2026-05-01T09:00:00Z")  # Q2: 4000
    program.at("2026-07-02T00:00:00Z")
    refused = await program.client.post("/v1/quarters/2026-Q2/close", headers=program.api.admin)
    assert refused.status_code == 409
    assert refused.json()["code"] == "previous_quarter_open"
    assert refused.json()["detail"] == (
        "Close 2026-Q1 first: it holds commission entries and is still open (quarters close in order)."
    )
    assert refused.json()["quarter"] == "2026-Q1"
    q1 = await program.client.post("/v1/quarters/2026-Q1/close", headers=program.api.admin)
    assert q1.status_code == 200
    assert [(s["quarter"], s["lines_total"]) for s in q1.json()["statements"]] == [("2026-Q1", 2000)]
    q2 = await program.client.post("/v1/quarters/2026-Q2/close", headers=program.api.admin)
    assert q2.status_code == 200
    assert [(s["quarter"], s["lines_total"]) for s in q2.json()["statements"]] == [("2026-Q2", 4000)]


async def test_r16_an_earlier_quarter_without_entries_does_not_block(program: Program) -> None:
    _p, c = await _referral_partner(program, at="2026-04-20T09:00:00Z")
    await program.order(c, [line("desktop", 1, 20000)], placed_at="2026-05-01T09:00:00Z")
    program.at("2026-07-02T00:00:00Z")
    q2 = await program.client.post("/v1/quarters/2026-Q2/close", headers=program.api.admin)
    assert q2.status_code == 200
    assert [(s["quarter"], s["lines_total"]) for s in q2.json()["statements"]] == [("2026-Q2", 4000)]


async def test_r16_an_approved_statement_unpaid_after_its_payout_date_is_overdue(program: Program) -> None:
    _p, c = await _referral_partner(program)
    await program.order(c, [line("desktop", 1, 10000)], placed_at="2026-02-01T09:00:00Z")
    program.at("2026-04-02T00:00:00Z")
    closed = await program.client.post("/v1/quarters/2026-Q1/close", headers=program.api.admin)
    [statement] = closed.json()["statements"]
    approved = await program.client.post(f"/v1/statements/{statement['id']}/approve", headers=program.api.admin)
    assert approved.status_code == 200

    async def overdue() -> tuple[list[str], int]:
        listed = await program.client.get("/v1/statements?overdue=true", headers=program.api.admin)
        assert listed.status_code == 200, listed.text
        overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
        return [s["id"] for s in listed.json()["items"]], overview["overdue_statements"]

    program.at("2026-04-25T23:59:00Z")  # still its payout date: on time
    assert await overdue() == ([], 0)
    program.at("2026-04-26T00:00:00Z")
    assert await overdue() == ([statement["id"]], 1)
    on_time = await program.client.get("/v1/statements?overdue=false", headers=program.api.admin)
    assert [s["id"] for s in on_time.json()["items"]] == []
    paid = await program.client.post(
        f"/v1/statements/{statement['id']}/mark-paid", json={"payment_reference": "SEPA-R16"}, headers=program.api.admin
    )
    assert paid.status_code == 200, paid.text
    assert await overdue() == ([], 0)


async def test_r16_a_draft_statement_still_unpaid_after_its_payout_date_is_overdue(program: Program) -> None:
    _p, c = await _referral_partner(program)
    await program.order(c, [line("desktop", 1, 15000)], placed_at="2026-02-11T09:00:00Z")
    program.at("2026-04-03T00:00:00Z")
    [statement] = (await program.client.post("/v1/quarters/2026-Q1/close", headers=program.api.admin)).json()[
        "statements"
    ]
    assert statement["status"] == "draft"

    async def overdue(query: str = "") -> tuple[list[str], int]:
        listed = await program.client.get(f"/v1/statements?overdue=true{query}", headers=program.api.admin)
        assert listed.status_code == 200, listed.text
        overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
        return [s["id"] for s in listed.json()["items"]], overview["overdue_statements"]

    program.at("2026-04-25T22:00:00Z")
    assert await overdue() == ([], 0)
    program.at("2026-04-26T00:00:01Z")
    assert await overdue() == ([statement["id"]], 1)
    assert await overdue("&status=draft") == ([statement["id"]], 1)
    assert (await overdue("&status=approved"))[0] == [] and (await overdue("&status=paid"))[0] == []
    on_time = await program.client.get("/v1/statements?overdue=false", headers=program.api.admin)
    assert on_time.json()["items"] == []
    approved = await program.client.post(f"/v1/statements/{statement['id']}/approve", headers=program.api.admin)
    assert approved.status_code == 200, approved.text
    assert await overdue("&status=approved") == ([statement["id"]], 1)
    paid = await program.client.post(
        f"/v1/statements/{statement['id']}/mark-paid", json={"payment_reference": "SEPA-D16"}, headers=program.api.admin
    )
    assert paid.status_code == 200, paid.text
    assert await overdue() == ([], 0)


async def test_r16_a_quarter_with_payable_entries_not_closed_after_its_payout_date_is_listed(
    program: Program,
) -> None:
    a, ca = await _referral_partner(program)
    b, cb = await _referral_partner(program)
    await program.order(ca, [line("desktop", 1, 30000)], placed_at="2026-01-20T09:00:00Z")  # Q1: 6000
    await program.order(ca, [line("desktop", 1, 5000)], placed_at="2026-03-30T09:00:00Z")  # Q1: 1000
    await program.order(cb, [line("desktop", 1, 12500)], placed_at="2026-02-14T09:00:00Z")  # Q1: 2500
    await program.order(ca, [line("desktop", 1, 40000)], placed_at="2026-05-05T09:00:00Z")  # Q2: 8000

    async def overdue(query: str = "") -> tuple[list[tuple[str, str, int, int]], int]:
        listed = await program.client.get(f"/v1/quarters/overdue{query}", headers=program.api.admin)
        assert listed.status_code == 200, listed.text
        assert listed.json()["has_more"] is False and listed.json()["next_cursor"] is None
        overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
        rows = [(r["quarter"], r["partner_id"], r["entries"], r["payable_amount"]) for r in listed.json()["items"]]
        return rows, overview["overdue_quarters"]

    program.at("2026-04-25T23:59:59Z")  # Q1 is over but may still be closed on its payout date
    assert await overdue() == ([], 0)
    program.at("2026-04-26T00:00:00Z")
    q1 = sorted([("2026-Q1", a[0], 2, 7000), ("2026-Q1", b[0], 1, 2500)], key=lambda r: r[1])
    assert await overdue() == (q1, 1)

    pages: list[dict] = []
    query = "?limit=1"
    while True:
        page = (await program.client.get(f"/v1/quarters/overdue{query}", headers=program.api.admin)).json()
        pages.append(page)
        if not page["has_more"]:
            break
        query = f"?limit=1&cursor={page['next_cursor']}"
    assert [(i["quarter"], i["partner_id"]) for p in pages for i in p["items"]] == [r[:2] for r in q1]
    assert pages[0]["items"][0]["payout_date"] == "2026-04-25" and pages[0]["items"][0]["currency"] == "EUR"
    bad = await program.client.get("/v1/quarters/overdue?cursor=bm9wZQ", headers=program.api.admin)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"
    partner = await program.client.get("/v1/quarters/overdue", headers=program.api.bearer(a[1]))
    assert partner.status_code == 403

    program.at("2026-07-26T00:00:00Z")  # Q2 too, and Q2's entries are counted in Q2, not in Q1
    assert await overdue() == ([*q1, ("2026-Q2", a[0], 1, 8000)], 2)
    closed = (await program.client.post("/v1/quarters/2026-Q1/close", headers=program.api.admin)).json()
    assert sorted((s["partner_id"], s["payable_amount"]) for s in closed["statements"]) == sorted(
        (r[1], r[3]) for r in q1
    )  # the list said what the statements pay
    assert await overdue() == ([("2026-Q2", a[0], 1, 8000)], 1)
    assert (await program.client.post("/v1/quarters/2026-Q2/close", headers=program.api.admin)).status_code == 200
    assert await overdue() == ([], 0)


# --- R10 early lapses --------------------------------------------------------------------------


async def _reseller_with_licence(program: Program, licence_id: str, term_end: str) -> tuple[tuple[str, str], Customer]:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    await program.order(
        c,
        [line("server-business", 2, 0, licence_id=licence_id, term_end=t(term_end))],
        placed_at="2026-01-20T09:00:00Z",
        buyer=p[0],
    )
    assert await program.total_points(p) == 8
    return p, c


async def _lapse_events(program: Program) -> list[tuple[str, str | None, str | None]]:
    listed = await program.client.get("/v1/webhook-events?limit=200", headers=program.api.admin)
    return [
        (e["status"], e["reason_code"], e["waiting_for"])
        for e in listed.json()["items"]
        if e["event_type"] == "licence.lapsed"
    ]


async def _apply_due_lapses(program: Program) -> int:
    from app.domain import webhooks

    app = program.api.client._transport.app  # type: ignore[attr-defined]
    async with app.state.session_factory.begin() as session:
        return await webhooks.apply_due_lapses(session, program.api.clock.now())


async def test_r10_an_early_lapse_is_parked_and_applies_by_itself_when_due(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, _ = await _reseller_with_licence(program, "lic-early", "2026-06-01T00:00:00Z")
    await program.lapse("lic-early", at="2026-05-01T00:00:00Z", expect=202)
    assert await _lapse_events(program) == [("parked", "lapse_not_due", "licence:lic-early")]
    assert await program.total_points(p) == 8
    program.at("2026-05-31T23:59:00Z")
    assert await _apply_due_lapses(program) == 0  # not yet
    assert await _lapse_events(program) == [("parked", "lapse_not_due", "licence:lic-early")]
    program.at("2026-06-01T00:10:00Z")
    applied_together = watch_applied_together(monkeypatch)
    assert await _apply_due_lapses(program) == 1
    assert applied_together == [1]  # the due-lapses job takes the path every store event takes
    assert await _lapse_events(program) == [("applied", "lapsed", None)]
    assert [(e["rule"], e["points"], e["effective_at"]) for e in await program.points(p)][-1] == (
        "R10",
        -8,
        "2026-06-01T00:00:00Z",  # at the term end, not when it was reported
    )
    assert await _apply_due_lapses(program) == 0


async def test_r10_a_renewal_arriving_first_resolves_an_early_lapse_as_renewed_since(program: Program) -> None:
    p, c = await _reseller_with_licence(program, "lic-renew", "2026-06-01T00:00:00Z")
    await program.lapse("lic-renew", at="2026-05-01T00:00:00Z", expect=202)
    await program.settle()  # parked first: delivered together with the renewal, the lapse is renewed_since at once
    await program.order(
        c,
        [line("server-business", 2, 0, kind="renewal", licence_id="lic-renew", term_end=t("2027-06-01T00:00:00Z"))],
        placed_at="2026-05-20T09:00:00Z",
        buyer=p[0],
    )
    assert await _lapse_events(program) == [("applied", "renewed_since", None)]
    program.at("2026-06-02T00:00:00Z")
    assert await _apply_due_lapses(program) == 0
    assert await program.total_points(p) == 8


async def test_r10_renewed_since_only_when_a_renewal_moved_the_term_end(program: Program) -> None:
    p, c = await _reseller_with_licence(program, "lic-same", "2026-06-01T00:00:00Z")
    # A renewal that ends when the licence already ended moves nothing...
    await program.order(
        c,
        [line("server-business", 2, 0, kind="renewal", licence_id="lic-same", term_end=t("2026-06-01T00:00:00Z"))],
        placed_at="2026-04-20T09:00:00Z",
        buyer=p[0],
    )
    # ...so a lapse reported early is parked, not answered renewed_since.
    await program.lapse("lic-same", at="2026-05-01T00:00:00Z", expect=202)
    assert await _lapse_events(program) == [("parked", "lapse_not_due", "licence:lic-same")]
    # A renewal that moves the term end past the reported lapse: a stale lapse has no effect.
    q, d = await _reseller_with_licence(program, "lic-moved", "2026-06-01T00:00:00Z")
    await program.order(
        d,
        [line("server-business", 2, 0, kind="renewal", licence_id="lic-moved", term_end=t("2027-06-01T00:00:00Z"))],
        placed_at="2026-05-25T09:00:00Z",
        buyer=q[0],
    )
    await program.lapse("lic-moved", at="2026-06-01T00:00:00Z")
    assert (await _lapse_events(program))[0] == ("applied", "renewed_since", None)
    assert await program.total_points(q) == 8 and await program.total_points(p) == 8


# --- R17 not-for-resale purpose ----------------------------------------------------------------


async def test_r17_a_free_licence_names_its_purpose_and_the_partner_acknowledges_the_limit(program: Program) -> None:
    p = await program.partner()
    url = f"/v1/partners/{p[0]}/nfr-licences"
    auth = program.api.bearer(p[1])
    missing = await program.client.post(url, json={"sku": "desktop"}, headers=auth)
    assert missing.status_code == 422 and missing.json()["code"] == "validation_failed"
    assert sorted(e["field"] for e in missing.json()["errors"]) == ["body.acknowledged", "body.purpose"]
    production = await program.client.post(
        url, json={"sku": "desktop", "purpose": "production", "acknowledged": True}, headers=auth
    )
    assert production.status_code == 422 and [e["field"] for e in production.json()["errors"]] == ["body.purpose"]
    refused = await program.client.post(
        url, json={"sku": "desktop", "purpose": "training", "acknowledged": False}, headers=auth
    )
    assert refused.status_code == 422 and refused.json()["code"] == "nfr_acknowledgement_missing"
    taken = await program.client.post(
        url, json={"sku": "desktop", "purpose": "training", "acknowledged": True}, headers=auth
    )
    assert taken.status_code == 201, taken.text
    assert (taken.json()["purpose"], taken.json()["acknowledged_at"]) == ("training", "2026-01-05T09:00:00Z")
    # Selling it is refused any credit and listed with the other flagged orders.
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    licence_id = taken.json()["licence_id"]
    order = await program.order(
        c, [line("desktop", 1, 48000, licence_id=licence_id)], placed_at="2026-01-20T09:00:00Z", buyer=p[0]
    )
    flags = (await program.client.get("/v1/order-flags?kind=nfr_resale", headers=program.api.admin)).json()
    assert order["receipt"]["reason_code"] == "nfr_licence_sold"
    assert [(f["order_id"], f["detail"]) for f in flags["items"]] == [
        (order["event"]["data"]["order_id"], f"not-for-resale licence {licence_id} (desktop) sold")
    ]


async def test_r17_licences_issued_before_keep_a_null_purpose(program: Program) -> None:
    p = await program.partner()
    url = f"/v1/partners/{p[0]}/nfr-licences"
    taken = await program.client.post(
        url, json={"sku": "desktop", "purpose": "evaluation", "acknowledged": True}, headers=program.api.bearer(p[1])
    )
    assert taken.status_code == 201
    assert program.api.connection is not None  # as the migration leaves a licence issued before R17 asked
    await program.api.connection.execute(text("UPDATE nfr_licences SET purpose = NULL, acknowledged_at = NULL"))
    listed = (await program.client.get(url, headers=program.api.bearer(p[1]))).json()["items"]
    assert [(n["sku"], n["purpose"], n["acknowledged_at"]) for n in listed] == [("desktop", None, None)]


# --- R20 the brand in company names ------------------------------------------------------------


async def test_r20_the_company_name_spells_qalyptus_at_registration_and_on_change(program: Program) -> None:
    program.at("2026-01-05T09:00:00Z")
    refused = await program.client.post("/v1/partners", json=program.api.registration(company="QALYPTUS Experts Ltd"))
    assert refused.status_code == 422
    assert (refused.json()["code"], refused.json()["found"]) == ("brand_misspelled", ["QALYPTUS"])
    assert refused.json()["detail"] == (
        "company spells the vendor's name as 'QALYPTUS'; write it 'Qalyptus', with a capital Q and the rest lower case."
    )
    partner, key = await program.api.register(company="Qalyptus Experts Ltd")
    changed = await program.client.patch(
        f"/v1/partners/{partner['id']}", json={"company": "qalyptus experts"}, headers=program.api.bearer(key)
    )
    assert changed.status_code == 422 and changed.json()["found"] == ["qalyptus"]
    renamed = await program.client.patch(
        f"/v1/partners/{partner['id']}", json={"company": "Experts for Qalyptus"}, headers=program.api.bearer(key)
    )
    assert renamed.status_code == 200 and renamed.json()["company"] == "Experts for Qalyptus"


# --- a registration by id ----------------------------------------------------------------------


async def test_a_partner_reads_its_registration_by_id_and_not_another_partners(program: Program) -> None:
    p = await program.partner()
    other = await program.partner()
    c = Customer.new()
    created = await program.register(p, c, at="2026-01-10T09:00:00Z")
    registration_id = created.json()["id"]
    program.at("2026-01-20T09:00:00Z")
    url = f"/v1/partners/{p[0]}/registrations/{registration_id}"
    mine = await program.client.get(url, headers=program.api.bearer(p[1]))
    assert mine.status_code == 200
    assert (mine.json()["id"], mine.json()["company"], mine.json()["state"], mine.json()["days_left"]) == (
        registration_id,
        c.company,
        "live",
        50,
    )
    assert (await program.client.get(url, headers=program.api.admin)).json() == mine.json()
    # Another partner: its own path does not hold it, and ours is not its to read.
    theirs = await program.client.get(
        f"/v1/partners/{other[0]}/registrations/{registration_id}", headers=program.api.bearer(other[1])
    )
    assert theirs.status_code == 404 and theirs.json()["code"] == "registration_not_found"
    foreign = await program.client.get(url, headers=program.api.bearer(other[1]))
    assert foreign.status_code == 404 and foreign.json()["code"] == "partner_not_found"


# --- R18 directory moderation ------------------------------------------------------------------


async def _directory(program: Program) -> list[tuple[str, str | None, list[str]]]:
    response = await program.client.get("/v1/directory")
    assert response.status_code == 200
    return [(i["name"], i["description"], i["services"]) for i in response.json()["items"]]


async def _pending(program: Program) -> list[dict[str, Any]]:
    response = await program.client.get("/v1/directory-reviews?status=pending", headers=program.api.admin)
    assert response.status_code == 200, response.text
    assert response.json()["has_more"] is False
    return list(response.json()["items"])


async def _listing(program: Program, q: str | None = None) -> tuple[list[tuple[str, str | None]], str]:
    response = await program.client.get("/v1/directory", params={"q": q} if q else None)
    assert response.status_code == 200, response.text
    return [(i["name"], i["website"]) for i in response.json()["items"]], response.headers["etag"]


async def test_r18_a_new_company_name_and_website_are_shown_after_an_admin_approves_them(program: Program) -> None:
    program.at("2026-03-02T09:00:00Z")
    partner, key = await program.api.register(company="Lyon Analytics SARL", website="https://lyon-analytics.example")
    auth = program.api.bearer(key)
    listed = [("Lyon Analytics SARL", "https://lyon-analytics.example/")]
    before, etag = await _listing(program)
    assert before == listed  # the registered name and website are shown from the start

    claim = "Best Qalyptus Reseller — 100 % guaranteed ROI"
    renamed = await program.client.patch(f"/v1/partners/{partner['id']}", json={"company": claim}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["company"], renamed.json()["published_company"]) == (claim, "Lyon Analytics SARL")
    assert await _listing(program) == (listed, etag)  # the directory waits for an admin
    assert (await _listing(program, "guaranteed"))[0] == []
    assert (await _listing(program, "lyon analytics"))[0] == listed
    unchanged = await program.client.get("/v1/directory", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    [review] = await _pending(program)
    assert (review["kind"], review["company"], review["website"]) == (
        "name_and_website",
        claim,
        "https://lyon-analytics.example/",
    )
    program.at("2026-03-03T09:00:00Z")
    rejected = await program.client.post(
        f"/v1/directory-reviews/{review['id']}/reject",
        json={"reason": "No guaranteed results in a company name."},
        headers=program.api.admin,
    )
    assert rejected.status_code == 200, rejected.text
    assert await _listing(program) == (listed, etag)

    # A new name, then a new website: one review, of the latest pair; the one before is superseded.
    for path, change in (
        (f"/v1/partners/{partner['id']}", {"company": "Lyon Analytics Group"}),
        (f"/v1/partners/{partner['id']}/directory-profile", {"website": "https://lyon-analytics-group.example"}),
    ):
        sent = await program.client.patch(path, json=change, headers=auth)
        assert sent.status_code == 200, sent.text
    [review] = await _pending(program)
    assert (review["company"], review["website"]) == ("Lyon Analytics Group", "https://lyon-analytics-group.example/")
    mine = (await program.client.get(f"/v1/partners/{partner['id']}/directory-reviews", headers=auth)).json()
    assert [(r["kind"], r["status"]) for r in mine["items"]] == [
        ("name_and_website", "pending"),
        ("name_and_website", "superseded"),
        ("name_and_website", "rejected"),
    ]
    assert await _listing(program) == (listed, etag)
    approved = await program.client.post(f"/v1/directory-reviews/{review['id']}/approve", headers=program.api.admin)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    shown, new_etag = await _listing(program)
    assert shown == [("Lyon Analytics Group", "https://lyon-analytics-group.example/")]
    assert new_etag != etag
    revalidated = await program.client.get("/v1/directory", headers={"If-None-Match": etag})
    assert revalidated.status_code == 200 and revalidated.headers["etag"] == new_etag
    assert (await _listing(program, "analytics group"))[0] == shown
    events = (await program.client.get(f"/v1/partners/{partner['id']}/events", headers=auth)).json()["items"]
    decided = [e["payload"] for e in events if e["type"] == "directory_text.approved"]
    assert [(d["kind"], d["company"], d["website"]) for d in decided] == [
        ("name_and_website", "Lyon Analytics Group", "https://lyon-analytics-group.example/")
    ]

    # Going back to what is shown needs no review; an admin's change waits like the partner's own.
    back = await program.client.patch(
        f"/v1/partners/{partner['id']}", json={"company": "Lyon Analytics Group"}, headers=program.api.admin
    )
    assert back.status_code == 200 and await _pending(program) == []
    by_admin = await program.client.patch(
        f"/v1/partners/{partner['id']}", json={"website": None}, headers=program.api.admin
    )
    assert by_admin.status_code == 200, by_admin.text
    [review] = await _pending(program)
    assert (review["company"], review["website"]) == ("Lyon Analytics Group", None)
    assert (await _listing(program))[0] == shown


async def test_r18_a_partner_registered_before_names_were_reviewed_keeps_its_name_shown(program: Program) -> None:
    partner, key = await program.api.register(company="Grenoble BI SAS", website="https://grenoble-bi.example")
    assert program.api.connection is not None  # as a build before these columns registered it
    await program.api.connection.execute(
        text("UPDATE partners SET published_company = NULL, published_website = NULL WHERE company = 'Grenoble BI SAS'")
    )
    shown = [("Grenoble BI SAS", "https://grenoble-bi.example/")]
    assert (await _listing(program))[0] == shown
    renamed = await program.client.patch(
        f"/v1/partners/{partner['id']}",
        json={"company": "Grenoble BI — Qalyptus certified"},
        headers=program.api.bearer(key),
    )
    assert renamed.status_code == 200, renamed.text
    assert (await _listing(program))[0] == shown
    [review] = await _pending(program)
    assert (review["kind"], review["company"]) == ("name_and_website", "Grenoble BI — Qalyptus certified")


async def test_r18_directory_text_is_published_after_an_admin_approves_it(program: Program) -> None:
    program.at("2026-01-05T09:00:00Z")
    partner, key = await program.api.register(company="Moderated SARL")
    profile = f"/v1/partners/{partner['id']}/directory-profile"
    auth = program.api.bearer(key)
    sent = await program.client.patch(
        profile, json={"description": "Certified Qalyptus partner in Lyon.", "services": ["training"]}, headers=auth
    )
    assert sent.status_code == 200
    assert (sent.json()["description"], sent.json()["published_description"]) == (
        "Certified Qalyptus partner in Lyon.",
        None,
    )
    assert await _directory(program) == [("Moderated SARL", None, [])]
    [review] = await _pending(program)
    assert (review["kind"], review["description"], review["services"]) == (
        "text",
        "Certified Qalyptus partner in Lyon.",
        ["training"],
    )
    program.at("2026-01-06T09:00:00Z")
    approved = await program.client.post(f"/v1/directory-reviews/{review['id']}/approve", headers=program.api.admin)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert await _directory(program) == [("Moderated SARL", "Certified Qalyptus partner in Lyon.", ["training"])]
    # A misleading claim: rejected with a reason; the directory keeps the last approved text.
    await program.client.patch(
        profile, json={"description": "100% guaranteed ROI, official Qalyptus product."}, headers=auth
    )
    [claim] = await _pending(program)
    rejected = await program.client.post(
        f"/v1/directory-reviews/{claim['id']}/reject",
        json={"reason": "No guaranteed results; the partner is not the vendor."},
        headers=program.api.admin,
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert await _directory(program) == [("Moderated SARL", "Certified Qalyptus partner in Lyon.", ["training"])]
    mine = (await program.client.get(f"/v1/partners/{partner['id']}/directory-reviews", headers=auth)).json()
    assert [(r["status"], r["reason"]) for r in mine["items"]] == [
        ("rejected", "No guaranteed results; the partner is not the vendor."),
        ("approved", None),
    ]
    again = await program.client.post(f"/v1/directory-reviews/{claim['id']}/approve", headers=program.api.admin)
    assert again.status_code == 409 and again.json()["code"] == "directory_review_decided"
    assert program.api.connection is not None
    decided = (
        await program.api.connection.execute(
            text("SELECT type, partner_id FROM domain_events WHERE type LIKE 'directory_text.%' ORDER BY id")
        )
    ).all()
    assert [row[0] for row in decided] == ["directory_text.approved", "directory_text.rejected"]


async def test_r18_a_newer_text_supersedes_a_pending_one(program: Program) -> None:
    partner, key = await program.api.register(company="Twice SA")
    profile = f"/v1/partners/{partner['id']}/directory-profile"
    await program.client.patch(profile, json={"description": "First draft"}, headers=program.api.bearer(key))
    await program.client.patch(profile, json={"description": "Second draft"}, headers=program.api.bearer(key))
    assert [r["description"] for r in await _pending(program)] == ["Second draft"]
    # Back to the published text (none): nothing left to review.
    await program.client.patch(profile, json={"description": None}, headers=program.api.bearer(key))
    assert await _pending(program) == []


async def test_r18_an_admin_hides_a_partner_and_only_an_admin_shows_it_again(program: Program) -> None:
    partner, key = await program.api.register(company="Hidden Ltd")
    auth = program.api.bearer(key)
    hide = await program.client.post(
        f"/v1/partners/{partner['id']}/directory-hide", json={"reason": "misleading claims"}, headers=program.api.admin
    )
    assert hide.status_code == 200 and hide.json()["hidden_reason"] == "misleading claims"
    assert await _directory(program) == []
    # The partner's own opt-out and back does not undo it.
    profile = f"/v1/partners/{partner['id']}/directory-profile"
    assert (await program.client.patch(profile, json={"listed": False}, headers=auth)).status_code == 200
    assert (await program.client.patch(profile, json={"listed": True}, headers=auth)).status_code == 200
    assert await _directory(program) == []
    forbidden = await program.client.post(
        f"/v1/partners/{partner['id']}/directory-unhide", json={"reason": "please"}, headers=auth
    )
    assert forbidden.status_code == 403
    shown = await program.client.post(
        f"/v1/partners/{partner['id']}/directory-unhide", json={"reason": "fixed"}, headers=program.api.admin
    )
    assert shown.status_code == 200 and shown.json()["hidden_reason"] is None
    assert await _directory(program) == [("Hidden Ltd", None, [])]
    # Its own opt-out stays its own.
    assert (await program.client.patch(profile, json={"listed": False}, headers=auth)).status_code == 200
    assert await _directory(program) == []


async def test_r20_a_company_name_registered_before_the_check_waits_in_the_review_queue(program: Program) -> None:
    partner, key = await program.api.register(company="Qalyptus Experts Ltd")
    assert program.api.connection is not None  # as the migration finds a name registered before R20
    await program.api.connection.execute(
        text("UPDATE partners SET company = 'QALYPTUS Experts Ltd' WHERE company = 'Qalyptus Experts Ltd'")
    )
    await program.api.connection.execute(
        text(
            "INSERT INTO directory_reviews (partner_id, kind, services, company, submitted_at, status) "
            "SELECT id, 'company_name', '[]', company, created_at, 'pending' FROM partners"
        )
    )
    [review] = await _pending(program)
    assert (review["kind"], review["company"]) == ("company_name", "QALYPTUS Experts Ltd")
    refused = await program.client.post(f"/v1/directory-reviews/{review['id']}/approve", headers=program.api.admin)
    assert refused.status_code == 409 and refused.json()["code"] == "company_name_not_approvable"
    # It stays until changed: other fields can still change.
    auth = program.api.bearer(key)
    kept = await program.client.patch(f"/v1/partners/{partner['id']}", json={"contact_name": "Jo"}, headers=auth)
    assert kept.status_code == 200 and kept.json()["company"] == "QALYPTUS Experts Ltd"
    renamed = await program.client.patch(
        f"/v1/partners/{partner['id']}", json={"company": "Qalyptus Experts Ltd"}, headers=auth
    )
    assert renamed.status_code == 200
    assert await _pending(program) == []
    mine = (await program.client.get(f"/v1/partners/{partner['id']}/directory-reviews", headers=auth)).json()
    assert [(r["status"], r["reason"]) for r in mine["items"]] == [
        ("resolved", "the company name was changed to 'Qalyptus Experts Ltd'")
    ]
