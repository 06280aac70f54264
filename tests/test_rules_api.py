"""Rules R01-R15 and R21 of program-rules.md, through the HTTP API."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.conftest import Api
from tests.program import Customer, Program, line, order_event, t


@pytest.fixture
def program(api: Api, delivery: str) -> Program:
    """Store events the test delivers are applied one by one, or together (`delivery`: both ways)."""
    return Program(api)


async def _established(
    program: Program,
    partner: tuple[str, str],
    customer: Customer,
    placed_at: str,
    *,
    buyer: bool = False,
    lines: list | None = None,
) -> dict:
    """Register `customer` ten days before `placed_at` and place its first qualifying order."""
    registered = t(placed_at).replace(day=1)
    await program.register(partner, customer, at=registered.isoformat())
    return await program.order(
        customer, lines or [line("desktop", 1, 48000)], placed_at=placed_at, buyer=partner[0] if buyer else None
    )


async def test_r01_points_come_from_the_terms_in_force_at_placed_at(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(program, p, c, "2026-01-20T09:00:00Z")
    program.at("2026-01-25T09:00:00Z")
    current = (await program.client.get("/v1/program/terms", headers=program.api.admin)).json()
    new_terms = {**current["terms"], "points_per_sku": {**current["terms"]["points_per_sku"], "desktop": 2}}
    published = await program.client.post(
        "/v1/program/terms",
        json={"effective_from": "2026-03-01T00:00:00Z", "terms": new_terms},
        headers=program.api.admin,
    )
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 2
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-03-05T09:00:00Z")
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-02-20T09:00:00Z")  # arrives late
    entries = await program.points(p)
    assert [(e["points"], e["terms_version"]) for e in entries] == [(1, 1), (2, 2), (1, 1)]
    past = await program.client.post(
        "/v1/program/terms",
        json={"effective_from": "2026-01-01T00:00:00Z", "terms": new_terms},
        headers=program.api.admin,
    )
    assert past.status_code == 422 and past.json()["code"] == "effective_from_not_in_future"


BRAND_ASSETS = "https://assets.qalyptus.example/partners/brand-kit"


@pytest.mark.parametrize("settings_overrides", [{"brand_assets_url": BRAND_ASSETS}])
async def test_r01_partners_read_the_terms_in_force_with_the_brand_assets(program: Program) -> None:
    _, key = await program.partner("2026-02-02T10:00:00Z")
    partner = program.api.bearer(key)
    as_admin = (await program.client.get("/v1/program/terms", headers=program.api.admin)).json()
    read = await program.client.get("/v1/program/terms", headers=partner)
    assert read.status_code == 200, read.text
    assert read.json() == as_admin  # the same terms, nothing more nor less than an admin reads
    assert set(read.json()) == {"version", "effective_from", "terms", "brand_assets_url"}
    assert read.json()["brand_assets_url"] == BRAND_ASSETS
    terms = read.json()["terms"]
    assert terms["points_per_sku"]["server-enterprise"] == 5
    assert [(lv["level"], lv["min_points"], lv["rate_bp"]) for lv in terms["levels"]] == [
        ("affiliate", 0, 0),
        ("silver", 1, 2000),
        ("gold", 160, 2500),
        ("platinum", 265, 3000),
    ]
    assert terms["referral_rate_bp"] == 2000

    announced = {**terms, "points_per_sku": {**terms["points_per_sku"], "creator": 3}}
    published = await program.client.post(
        "/v1/program/terms",
        json={"effective_from": "2026-04-01T00:00:00Z", "terms": announced},
        headers=program.api.admin,
    )
    assert published.status_code == 201, published.text
    versions = await program.client.get("/v1/program/terms/versions", headers=partner)
    assert versions.status_code == 200, versions.text
    assert [v["terms"]["points_per_sku"]["creator"] for v in versions.json()["items"]] == [1, 3]
    still = (await program.client.get("/v1/program/terms", headers=partner)).json()
    assert (still["version"], still["terms"]["points_per_sku"]["creator"]) == (1, 1)
    program.at("2026-04-01T00:00:01Z")
    now_in_force = (await program.client.get("/v1/program/terms", headers=partner)).json()
    assert (now_in_force["version"], now_in_force["terms"]["points_per_sku"]["creator"]) == (2, 3)

    refused = await program.client.post(
        "/v1/program/terms", json={"effective_from": "2026-09-01T00:00:00Z", "terms": terms}, headers=partner
    )
    assert refused.status_code == 403 and refused.json()["code"] == "admin_key_required"
    store = await program.api.issue_key("store", ["store"])
    for path in ("/v1/program/terms", "/v1/program/terms/versions"):
        other = await program.client.get(path, headers=program.api.bearer(store))
        assert other.status_code == 403 and other.json()["code"] == "admin_or_partner_key_required", path


async def test_r02_levels_follow_active_points(program: Program) -> None:
    p = await program.partner()
    assert (await program.status(p))["level"] == "affiliate"
    c = Customer.new()
    await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        buyer=True,
        lines=[line("server-enterprise", 32, 0), line("desktop", 1, 0)],
    )
    status = await program.status(p)
    assert status["active_points"] == 161 and status["level"] == "gold"
    assert status["next_level"] == "platinum" and status["points_to_next_level"] == 104
    assert status["discount_rate_bp"] == 2500


async def test_r03_balance_is_the_sum_of_entries_and_level_changes_are_kept(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        lines=[line("server-enterprise", 1, 300000, licence_id="lic-r03", term_end=t("2026-05-01T00:00:00Z"))],
    )
    await program.lapse("lic-r03", at="2026-05-01T00:00:00Z")
    entries = await program.points(p)
    assert [e["points"] for e in entries] == [5, -5]
    assert (await program.status(p))["active_points"] == sum(e["points"] for e in entries) == 0
    history = (await program.client.get(f"/v1/partners/{p[0]}/level-history", headers=program.api.admin)).json()[
        "items"
    ]
    assert [(h["from_level"], h["to_level"]) for h in history] == [("affiliate", "silver"), ("silver", "affiliate")]
    assert history[1]["points_entry_id"] == entries[1]["id"]


async def test_r03a_level_is_fixed_when_the_order_is_processed(program: Program) -> None:
    p = await program.partner()
    c, d = Customer.new(), Customer.new()
    # A resale customer at 150 points (Silver).
    await _established(program, p, c, "2026-02-10T09:00:00Z", buyer=True, lines=[line("server-enterprise", 30, 0)])
    # The customer buys directly: lifetime commission at the Silver rate.
    await program.order(c, [line("desktop", 1, 10000)], placed_at="2026-03-10T09:00:00Z")
    # An earlier-dated order arrives late and lifts the partner to Gold from 2026-02-15.
    await program.register(p, d, at="2026-02-12T09:00:00Z")
    await program.order(d, [line("server-enterprise", 2, 0)], placed_at="2026-02-15T09:00:00Z", buyer=p[0])
    # The processed order keeps its 20 %; a new one gets 25 %.
    await program.order(c, [line("desktop", 1, 10000)], placed_at="2026-03-20T09:00:00Z")
    money = [e for e in await program.money(p) if e["rule"] == "R13"]
    assert [(e["rate_bp"], e["amount"]) for e in money] == [(2000, 2000), (2500, 2500)]


async def test_r04_suspended_partner_earns_nothing_on_orders_placed_while_suspended(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(program, p, c, "2026-01-20T09:00:00Z")
    program.at("2026-02-01T00:00:00Z")
    await program.client.post(f"/v1/partners/{p[0]}/suspend", json={"reason": "audit"}, headers=program.api.admin)
    refused = await program.register(p, Customer.new())
    assert refused.status_code == 403 and refused.json()["code"] == "partner_suspended"
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-02-05T09:00:00Z")
    program.at("2026-02-10T00:00:00Z")
    await program.client.post(f"/v1/partners/{p[0]}/reinstate", json={"reason": "ok"}, headers=program.api.admin)
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-02-15T09:00:00Z")
    # What it earned before the suspension stays; nothing for the order placed while suspended.
    assert [e["effective_at"] for e in await program.points(p)] == ["2026-01-20T09:00:00Z", "2026-02-15T09:00:00Z"]
    assert await program.total_points(p) == 2 and await program.total_money(p) == 2 * 9600


async def test_r04_terminated_partner_loses_its_relationships(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(program, p, c, "2026-01-20T09:00:00Z")
    program.at("2026-02-01T00:00:00Z")
    await program.client.post(f"/v1/partners/{p[0]}/terminate", json={"reason": "breach"}, headers=program.api.admin)
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-02-05T09:00:00Z")
    assert await program.total_points(p) == 1
    relationships = (await program.client.get(f"/v1/partners/{p[0]}/relationships", headers=program.api.admin)).json()[
        "items"
    ]
    assert relationships[0]["ended_at"] == "2026-02-01T00:00:00Z"


async def test_r04_order_placed_when_the_agreement_was_not_accepted_earns_nothing(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    await program.client.post(
        "/v1/agreements",
        json={"version": "2026-02", "title": "New", "accept_by": "2026-02-01T00:00:00Z"},
        headers=program.api.admin,
    )
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-02-03T09:00:00Z")
    assert await program.total_points(p) == 0


async def test_r05_registration_needs_a_strong_identifier(program: Program) -> None:
    p = await program.partner()
    body = {"company": "Solo", "country": "FR", "contact_name": "A", "contact_email": "solo@gmail.com"}
    response = await program.client.post(
        f"/v1/partners/{p[0]}/registrations", json=body, headers=program.api.bearer(p[1])
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "free_mail_domain_only" and "gmail.com" in problem["detail"]
    assert problem["missing"] == ["vat_id", "domain", "store_customer_id"]
    with_vat = await program.client.post(
        f"/v1/partners/{p[0]}/registrations",
        json={**body, "vat_id": "FR 40 303 265 045"},
        headers=program.api.bearer(p[1]),
    )
    assert with_vat.status_code == 201, with_vat.text


async def test_r05_a_registrations_vat_id_is_checked_per_country(program: Program) -> None:
    p = await program.partner()
    body = {"company": "Brauhaus Kiel GmbH", "country": "DE", "contact_name": "B", "contact_email": "b@gmail.com"}
    bad = await program.client.post(
        f"/v1/partners/{p[0]}/registrations", json={**body, "vat_id": "DE136695977"}, headers=program.api.bearer(p[1])
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "vat_id_invalid"
    assert "DE136695977 is not a valid DE VAT id" in bad.json()["detail"]
    good = await program.client.post(
        f"/v1/partners/{p[0]}/registrations",
        json={**body, "vat_id": "de 136 695 976"},
        headers=program.api.bearer(p[1]),
    )
    assert good.status_code == 201, good.text


async def test_r05_identifiers_are_compared_normalised(program: Program) -> None:
    p, q = await program.partner(), await program.partner()
    body = {
        "company": "Acme",
        "country": "FR",
        "contact_name": "A",
        "contact_email": "a@gmail.com",
        "vat_id": "FR40303265045",
    }
    assert (
        await program.client.post(f"/v1/partners/{p[0]}/registrations", json=body, headers=program.api.bearer(p[1]))
    ).status_code == 201
    other = {**body, "vat_id": "fr 40.303.265.045"}
    refused = await program.client.post(
        f"/v1/partners/{q[0]}/registrations", json=other, headers=program.api.bearer(q[1])
    )
    assert refused.status_code == 409 and refused.json()["code"] == "registered_by_another_partner"


async def test_r06_refusals_say_why_and_are_kept(program: Program) -> None:
    p, q = await program.partner(), await program.partner()
    existing, taken, busy = Customer.new("Existing"), Customer.new("Taken"), Customer.new("Busy")
    admin, q_key = program.api.admin, program.api.bearer(q[1])
    imported = await program.client.post(
        "/v1/customer-imports",
        json={"customers": [{"company": existing.company, "country": "FR", "domain": existing.domain}]},
        headers=admin,
    )
    assert imported.json()["created"] == 1
    assert (await program.register(q, taken)).status_code == 201
    # `busy` becomes known through a registration that is then withdrawn; the vendor flags it.
    registration = (await program.register(q, busy)).json()
    await program.client.post(f"/v1/partners/{q[0]}/registrations/{registration['id']}/withdraw", headers=q_key)
    busy_id = registration["customer_id"]
    flagged = await program.client.put(
        f"/v1/customers/{busy_id}/sales-process",
        json={"until": "2026-06-01T00:00:00Z", "reason": "enterprise deal"},
        headers=admin,
    )
    assert flagged.status_code == 200 and flagged.json()["sales_process_until"] == "2026-06-01T00:00:00Z"

    codes = {}
    for name, customer in (("existing", existing), ("taken", taken), ("busy", busy)):
        response = await program.register(p, customer)
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        codes[name] = response.json()["code"]
    assert codes == {
        "existing": "already_a_customer",
        "taken": "registered_by_another_partner",
        "busy": "in_active_sales_process",
    }
    kept = (await program.client.get(f"/v1/registration-refusals?partner_id={p[0]}", headers=admin)).json()
    assert [r["code"] for r in reversed(kept["items"])] == list(codes.values())
    assert kept["items"][0]["company"] == busy.company and kept["items"][0]["customer_id"] == busy_id
    unflag = await program.client.delete(f"/v1/customers/{busy_id}/sales-process", headers=admin)
    assert unflag.json()["sales_process_until"] is None
    assert (await program.register(p, busy)).status_code == 201


async def test_r06_cool_off_after_an_expired_registration(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    assert (await program.register(p, c, at="2026-01-10T09:00:00Z")).status_code == 201
    again = await program.register(p, c)
    assert again.status_code == 409 and again.json()["code"] == "already_registered_by_you"
    program.at("2026-03-20T09:00:00Z")  # expired on 2026-03-11, cool-off until 2026-05-10
    refused = await program.register(p, c)
    assert refused.status_code == 409 and refused.json()["code"] == "cool_off"
    assert "2026-05-10" in refused.json()["detail"]
    other = await program.partner("2026-03-20T09:00:00Z")
    assert (await program.register(other, c)).status_code == 201  # the cool-off binds only the same partner


async def test_r07_window_days_left_and_withdrawal(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    created = (await program.register(p, c, at="2026-01-10T09:00:00Z")).json()
    assert created["state"] == "live" and created["days_left"] == 60
    assert created["expires_at"] == "2026-03-11T09:00:00Z"
    program.at("2026-02-09T10:00:00Z")
    listed = (await program.client.get(f"/v1/partners/{p[0]}/registrations", headers=program.api.bearer(p[1]))).json()[
        "items"
    ]
    assert listed[0]["days_left"] == 30
    withdrawn = await program.client.post(
        f"/v1/partners/{p[0]}/registrations/{created['id']}/withdraw", headers=program.api.bearer(p[1])
    )
    assert withdrawn.json()["state"] == "withdrawn" and withdrawn.json()["days_left"] == 0
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-02-10T09:00:00Z")
    assert await program.total_points(p) == 0
    program.at("2026-04-01T00:00:00Z")
    other = Customer.new()
    await program.register(p, other, at="2026-01-10T09:00:00Z")
    program.at("2026-04-01T00:00:00Z")
    states = (
        await program.client.get(f"/v1/partners/{p[0]}/registrations?state=expired", headers=program.api.admin)
    ).json()["items"]
    assert [r["company"] for r in states] == [other.company]


async def test_r08_two_partners_matching_registrations_park_the_order(program: Program) -> None:
    p, q = await program.partner(), await program.partner()
    by_vat = Customer(company="Twin SA", vat_id="FR40303265045", domain=None, store_customer_id=None)
    by_domain = Customer(company="Twin SA", domain="twin.example", vat_id=None, store_customer_id=None)
    await program.register(p, by_vat, at="2026-01-10T09:00:00Z")
    await program.register(q, by_domain, at="2026-01-10T09:00:00Z")
    both = Customer(company="Twin SA", vat_id="FR40303265045", domain="twin.example")
    result = await program.order(both, [line("desktop", 1, 48000)], placed_at="2026-01-20T09:00:00Z", expect=202)
    await program.settle()
    # Each partner's registration made its own customer; the order names both: an admin decides.
    assert result["receipt"]["reason_code"] == "ambiguous_customer"
    assert "several customers" in result["receipt"]["reason"]
    assert await program.total_points(p) == 0 and await program.total_points(q) == 0


async def test_r08_same_order_id_with_other_content_is_parked(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    first = await _established(program, p, c, "2026-01-20T09:00:00Z")
    order_id = first["event"]["data"]["order_id"]
    changed = await program.order(
        c, [line("desktop", 3, 48000)], placed_at="2026-01-20T09:00:00Z", order_id=order_id, expect=202
    )
    await program.settle()
    assert changed["receipt"]["reason_code"] == "order_content_conflict"
    assert await program.total_points(p) == 1


async def test_r08_unmatched_order_is_recorded_and_makes_an_existing_customer(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-01-20T09:00:00Z")
    response = await program.register(p, c)
    assert response.status_code == 409 and response.json()["code"] == "already_a_customer"


async def test_r08_referral_becomes_resale_with_the_first_resale_order(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(program, p, c, "2026-01-20T09:00:00Z")
    rel = (await program.client.get(f"/v1/partners/{p[0]}/relationships", headers=program.api.admin)).json()["items"][0]
    assert rel["mode"] == "referral"
    await program.order(c, [line("desktop", 1, 38400, discount=9600)], placed_at="2026-02-20T09:00:00Z", buyer=p[0])
    rel = (await program.client.get(f"/v1/partners/{p[0]}/relationships", headers=program.api.admin)).json()["items"][0]
    assert rel["mode"] == "resale" and rel["resale_since"] == "2026-02-20T09:00:00Z"
    # A later direct purchase earns lifetime commission (R13) at the level rate, not referral.
    await program.order(c, [line("desktop", 1, 48000)], placed_at="2026-03-20T09:00:00Z")
    assert [e["rule"] for e in await program.money(p)] == ["R11", "R13"]


async def test_r08_a_late_order_meeting_another_partners_relationship_is_flagged_for_an_adjustment(
    program: Program,
) -> None:
    """The relationship that exists stands; the late order is recorded, earns nothing, is flagged for
    the partner whose registration it fell in, and an admin settles it with an adjustment."""
    first, second = await program.partner(), await program.partner()
    c = Customer.new("Latecomer")
    assert (await program.register(first, c, at="2026-03-03T10:00:00Z")).status_code == 201  # until 2 May
    assert (await program.register(second, c, at="2026-06-08T10:00:00Z")).status_code == 201
    await program.order(
        c, [line("server-business", 1, 72000, discount=18000)], placed_at="2026-06-15T10:00:00Z", buyer=second[0]
    )
    program.at("2026-06-22T10:00:00Z")
    late = await program.order(c, [line("desktop", 2, 64000, line_id="late1")], placed_at="2026-04-14T10:00:00Z")
    await program.settle()
    assert (late["receipt"]["status"], late["receipt"]["reason_code"]) == ("applied", "relationship_conflict")
    order_id = late["event"]["data"]["order_id"]
    assert await program.total_points(first) == 0 and await program.total_money(first) == 0
    assert await program.total_points(second) == 4  # its own resale only
    relationships = (
        await program.client.get(f"/v1/partners/{second[0]}/relationships", headers=program.api.admin)
    ).json()["items"]
    assert [(r["mode"], r["first_order_at"]) for r in relationships] == [("resale", "2026-06-15T10:00:00Z")]
    flags = (await program.client.get("/v1/order-flags?resolved=false", headers=program.api.admin)).json()["items"]
    assert [(f["kind"], f["order_id"], f["partner_id"]) for f in flags] == [
        ("relationship_conflict", order_id, first[0])
    ]
    assert flags[0]["detail"] == (
        "placed 2026-04-14T10:00:00+00:00 within this partner's registration of the customer (until "
        f"2026-05-02T10:00:00+00:00), but the customer's relationship is partner {second[0]}'s (first order "
        "2026-06-15T10:00:00+00:00): it stands and the order earns nothing; an adjustment may make up for it"
    )
    overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
    assert overview["order_flags"] == {"relationship_conflict": 1}
    # The same order delivered again is a duplicate, not a second flag.
    again = await program.send(late["event"])
    await program.settle()
    assert again.json()["status"] == "duplicate"
    # An admin grants the first partner what the order would have earned it, then resolves the flag.
    granted = await program.client.post(
        f"/v1/partners/{first[0]}/adjustments",
        json={"kind": "money", "amount": 6400, "currency": "EUR", "reason": f"referral on late order {order_id}"},
        headers=program.api.admin,
    )
    assert granted.status_code == 201, granted.text
    resolved = await program.client.post(
        f"/v1/order-flags/{flags[0]['id']}/resolve",
        json={"reason": "adjustment of 64.00 EUR granted"},
        headers=program.api.admin,
    )
    assert resolved.status_code == 200 and resolved.json()["resolution"] == "adjustment of 64.00 EUR granted"
    assert await program.total_money(first) == 6400
    overview = (await program.client.get("/v1/dashboards/overview", headers=program.api.admin)).json()
    assert overview["order_flags"] == {}


async def _relationships(program: Program, partner: tuple[str, str]) -> list[dict[str, Any]]:
    response = await program.client.get(f"/v1/partners/{partner[0]}/relationships", headers=program.api.admin)
    return list(response.json()["items"])


async def test_r08_two_partners_windows_in_any_arrival_order_make_one_relationship(program: Program) -> None:
    """Orders within two partners' successive registrations, delivered in every order: each is applied
    (none fails), the customer ends with exactly one relationship, and the orders it does not cover
    are flagged `relationship_conflict` and earn nothing."""
    for arrival in itertools.permutations(range(3)):
        first, second = await program.partner(), await program.partner()
        c = Customer.new("Arrival")
        assert (await program.register(first, c, at="2026-03-03T10:00:00Z")).status_code == 201
        assert (await program.register(second, c, at="2026-06-08T10:00:00Z")).status_code == 201
        events = [
            order_event(c, [line("desktop", 1, 20000)], placed_at=t("2026-04-14T10:00:00Z")),
            order_event(
                c, [line("desktop", 1, 16000, discount=4000)], placed_at=t("2026-04-20T10:00:00Z"), buyer=first[0]
            ),
            order_event(
                c, [line("desktop", 1, 16000, discount=4000)], placed_at=t("2026-06-15T10:00:00Z"), buyer=second[0]
            ),
        ]
        program.at("2026-07-01T10:00:00Z")
        sent = {n: await program.send(events[n]) for n in arrival}
        await program.settle()
        outcomes = {}
        for n, response in sent.items():
            receipt = response.json()
            assert receipt["status"] == "applied", (arrival, n, receipt)
            outcomes[n] = receipt["reason_code"]
        owners = [p for p in (first, second) if await _relationships(program, p)]
        assert len(owners) == 1, arrival
        conflicts = [n for n, outcome in outcomes.items() if outcome == "relationship_conflict"]
        if owners == [first]:  # an April order arrived first: the second partner's June resale is not its own
            assert outcomes[2] == "customer_of_another_partner" and conflicts == [], (arrival, outcomes)
        else:  # the June resale arrived first: both April orders meet its relationship
            assert arrival[0] == 2 and sorted(conflicts) == [0, 1], (arrival, outcomes)
            assert await program.total_points(first) == 0


async def test_r09_points_for_new_licences_only_without_time_limit(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        lines=[line("desktop", 1, 48000, licence_id="lic-r09", term_end=t("2027-01-20T09:00:00Z"))],
    )
    await program.order(
        c,
        [line("desktop", 1, 48000, kind="renewal", licence_id="lic-r09", term_end=t("2028-01-20T09:00:00Z"))],
        placed_at="2027-01-10T09:00:00Z",
    )
    await program.order(c, [line("server-business", 2, 200000)], placed_at="2029-03-01T09:00:00Z")  # year-3 up-sell
    assert [(e["rule"], e["points"]) for e in await program.points(p)] == [("R09", 1), ("R09", 8)]
    assert [e["rule"] for e in await program.money(p)] == ["R11", "R11"]  # nothing after 12 months


async def test_r10_lapse_revokes_and_a_late_renewal_restores_exactly(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        lines=[line("server-business", 3, 0, licence_id="lic-r10", term_end=t("2026-07-01T00:00:00Z"))],
        buyer=True,
    )
    assert await program.total_points(p) == 12
    await program.lapse("lic-r10", at="2026-07-01T00:00:00Z")
    assert await program.total_points(p) == 0
    again = await program.lapse("lic-r10", at="2026-07-01T00:00:00Z")
    await program.settle()
    assert again.json()["status"] == "duplicate"
    await program.order(
        c,
        [line("server-business", 3, 0, kind="renewal", licence_id="lic-r10", term_end=t("2027-07-15T00:00:00Z"))],
        placed_at="2026-07-15T00:00:00Z",
        buyer=p[0],
    )
    assert [(e["rule"], e["points"]) for e in await program.points(p)] == [("R09", 12), ("R10", -12), ("R10", 12)]


async def test_r10_renewal_for_fewer_licences_lapses_the_difference(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        buyer=True,
        lines=[line("server-business", 3, 0, licence_id="lic-few", term_end=t("2027-01-20T00:00:00Z"))],
    )
    await program.order(
        c,
        [line("server-business", 1, 0, kind="renewal", licence_id="lic-few", term_end=t("2028-01-20T00:00:00Z"))],
        placed_at="2027-01-10T00:00:00Z",
        buyer=p[0],
    )
    assert await program.total_points(p) == 4


async def test_r10_overdue_licences_lapse_without_an_event(program: Program) -> None:
    from app.domain import orders

    p = await program.partner()
    c = Customer.new()
    await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        buyer=True,
        lines=[
            line("desktop", 2, 0, licence_id="lic-sweep", term_end=t("2026-04-01T00:00:00Z")),
            line("desktop", 1, 0, licence_id="lic-keep", term_end=t("2026-12-01T00:00:00Z")),
        ],
    )
    await program.settle()  # before reading the database directly
    program.at("2026-04-02T00:00:00Z")
    app = program.api.client._transport.app  # type: ignore[attr-defined]
    async with app.state.session_factory.begin() as session:
        assert await orders.sweep_lapses(session, now=program.api.clock.now()) == 1
    async with app.state.session_factory.begin() as session:
        assert await orders.sweep_lapses(session, now=program.api.clock.now()) == 0
    assert [(e["rule"], e["points"], e["effective_at"]) for e in await program.points(p)][-1] == (
        "R10",
        -2,
        "2026-04-01T00:00:00Z",
    )


async def test_r11_referral_commission_only_within_12_months(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(program, p, c, "2026-01-20T09:00:00Z")
    await program.order(c, [line("server-business", 1, 100000)], placed_at="2027-01-20T08:59:00Z")
    await program.order(c, [line("server-business", 1, 100000)], placed_at="2027-01-20T09:00:00Z")
    assert [e["amount"] for e in await program.money(p)] == [9600, 20000]


async def test_r12_quote_and_mismatch_flag(program: Program) -> None:
    p = await program.partner()
    c, stranger = Customer.new(), Customer.new("Stranger")
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-01-11T09:00:00Z")
    store = {"Authorization": f"Bearer {await program.api.issue_key('store', ['store'])}"}
    body = {
        "partner_id": p[0],
        "currency": "EUR",
        "lines": [{"sku": "desktop", "quantity": 2, "kind": "new", "list_amount": 96000}],
    }
    quote = (await program.client.post("/v1/pricing/quote", json={**body, "customer": c.store()}, headers=store)).json()
    assert quote["level"] == "affiliate" and quote["rate_bp"] == 2000  # Affiliate gets the Silver rate
    assert quote["lines"][0] == {
        "sku": "desktop",
        "quantity": 2,
        "kind": "new",
        "list_amount": 96000,
        "discount_amount": 19200,
        "net_amount": 76800,
    }
    none = (
        await program.client.post("/v1/pricing/quote", json={**body, "customer": stranger.store()}, headers=store)
    ).json()
    assert none["rate_bp"] == 0 and none["no_discount_reason"] == "customer_not_registered"
    assert (quote["outcome"], none["outcome"]) == ("credited", "customer_not_registered")
    assert (
        await program.client.post("/v1/pricing/quote", json={**body, "customer": c.store()}, headers=program.api.admin)
    ).status_code == 403
    # The store applied 10 % instead of 20 %: flagged, never corrected.
    bought = await program.order(
        c, [line("desktop", 2, 86400, discount=9600)], placed_at="2026-01-20T09:00:00Z", buyer=p[0]
    )
    mismatches = (await program.client.get("/v1/discount-mismatches", headers=program.api.admin)).json()["items"]
    assert [(m["expected_amount"], m["reported_amount"], m["expected_rate_bp"]) for m in mismatches] == [
        (19200, 9600, 2000)
    ]
    # The quote's outcome is what the orders it priced were recorded with.
    unregistered = await program.order(
        stranger, [line("desktop", 2, 96000)], placed_at="2026-01-21T09:00:00Z", buyer=p[0]
    )
    await program.settle()
    assert [bought["receipt"]["reason_code"], unregistered["receipt"]["reason_code"]] == [
        quote["outcome"],
        none["outcome"],
    ]


async def test_r13_lifetime_commission_while_silver_or_above(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        buyer=True,
        lines=[line("desktop", 1, 0, licence_id="lic-r13", term_end=t("2026-06-01T00:00:00Z"))],
    )
    await program.order(c, [line("creator", 1, 10000)], placed_at="2026-02-01T09:00:00Z")
    assert [(e["rule"], e["amount"]) for e in await program.money(p)] == [("R13", 2000)]
    await program.lapse("lic-r13", at="2026-06-01T00:00:00Z")
    # The creator licence bought directly (1 point, R09) keeps the partner at Silver.
    assert (await program.status(p))["active_points"] == 1
    await program.order(c, [line("creator", 1, 10000, kind="renewal")], placed_at="2026-06-05T09:00:00Z")
    assert [(e["rule"], e["amount"]) for e in await program.money(p)] == [("R13", 2000), ("R13", 2000)]


async def test_r13_no_lifetime_commission_at_affiliate_level(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        buyer=True,
        lines=[line("desktop", 1, 0, licence_id="lic-r13b", term_end=t("2026-06-01T00:00:00Z"))],
    )
    await program.lapse("lic-r13b", at="2026-06-01T00:00:00Z")
    assert (await program.status(p))["level"] == "affiliate"
    await program.order(c, [line("desktop", 1, 48000, kind="renewal")], placed_at="2026-06-05T09:00:00Z")
    assert await program.money(p) == []


async def test_r14_partial_refunds_on_running_totals(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    order = await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        lines=[line("server-business", 3, 300000, line_id="sb", licence_id="lic-r14")],
    )
    order_id = order["event"]["data"]["order_id"]
    await program.refund(order_id, [("sb", 10000)], at="2026-02-01T09:00:00Z")  # goodwill: commission only
    await program.refund(order_id, [("sb", 100000)], at="2026-02-02T09:00:00Z")  # one licence
    await program.refund(order_id, [("sb", 190000)], at="2026-02-03T09:00:00Z")  # completes the line
    money = [e["amount"] for e in await program.money(p)]
    points = [e["points"] for e in await program.points(p)]
    assert money == [60000, -2000, -20000, -38000] and sum(money) == 0
    assert points == [12, -4, -8] and sum(points) == 0
    excess = await program.refund(order_id, [("sb", 1)], at="2026-02-04T09:00:00Z", expect=202)
    await program.settle()
    assert excess.json()["reason_code"] == "refund_exceeds_paid"


async def test_r15_money_is_integer_per_currency(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(program, p, c, "2026-01-20T09:00:00Z", lines=[line("desktop", 1, 12345)])
    await program.order(c, [line("desktop", 1, 9999)], placed_at="2026-02-01T09:00:00Z", currency="USD")
    status = await program.status(p)
    assert status["commission_balances"] == {"EUR": 2469, "USD": 2000}


async def test_r21_entries_explain_themselves(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    order = await _established(program, p, c, "2026-01-20T09:00:00Z", lines=[line("desktop", 2, 96000, line_id="d")])
    entry = (await program.points(p))[0]
    money = (await program.money(p))[0]
    assert entry["order_line_id"] == money["order_line_id"]  # both from line "d", the order's only line
    assert isinstance(entry["order_line_id"], int)
    for e in (entry, money):
        assert e["order_id"] == order["event"]["data"]["order_id"]
        assert e["terms_version"] == 1
        assert e["effective_at"] == "2026-01-20T09:00:00Z" and e["recorded_at"] == "2026-01-20T09:01:00Z"
    assert entry["rule"] == "R09" and "2 x desktop" in entry["explanation"]
    assert money["rule"] == "R11" and money["rate_bp"] == 2000 and money["base_amount"] == 96000
    assert "20 %" in money["explanation"]


async def test_r03_status_shows_points_at_risk_of_licences_ending_soon(program: Program) -> None:
    p = await program.partner()
    c = Customer.new()
    await _established(
        program,
        p,
        c,
        "2026-01-20T09:00:00Z",
        buyer=True,
        lines=[
            line("server-business", 2, 0, licence_id="lic-soon", term_end=t("2026-03-01T00:00:00Z")),
            line("desktop", 3, 0, licence_id="lic-later", term_end=t("2027-01-20T00:00:00Z")),
        ],
    )
    program.at("2026-02-01T00:00:00Z")
    status = await program.status(p)
    assert status["active_points"] == 11 and status["points_at_risk"] == 8
    assert status["at_risk_until"] == "2026-04-02T00:00:00Z"
