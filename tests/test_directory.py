"""R17 not-for-resale licences, R18 the public directory, R20 brand spelling."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.program import Customer, Program, iso, line, t

PUBLIC_FIELDS = {
    "id",
    "name",
    "level",
    "country",
    "region",
    "website",
    "languages",
    "services",
    "regions_served",
    "description",
}


NFR = {"purpose": "demonstration", "acknowledged": True}


@pytest.fixture
def program(api: Api, delivery: str) -> Program:
    """Store events the test delivers are applied one by one, or together (`delivery`: both ways)."""
    return Program(api)


async def _points(program: Program, p: tuple[str, str], points_of_sku: list[tuple[str, int]]) -> None:
    """Give the partner points: a registered customer, then a resale order a minute later."""
    c = Customer.new()
    await program.register(p, c)
    placed = program.api.clock.advance(minutes=1)
    await program.order(c, [line(sku, n, 0) for sku, n in points_of_sku], placed_at=iso(placed), buyer=p[0])


async def test_r18_directory_lists_active_partners_best_level_first_then_name(program: Program) -> None:
    program.at("2026-01-05T09:00:00Z")
    names = {}
    for name, points in (
        ("Zeta", [("server-enterprise", 53)]),
        ("Alpha", []),
        ("Mid", [("server-enterprise", 32)]),
        ("Beta", [("desktop", 1)]),
        ("Aaa Gold", [("server-enterprise", 33)]),
    ):
        partner, key = await program.api.register(company=name)
        names[name] = (partner["id"], key)
        if points:
            program.api.clock.advance(minutes=1)
            await _points(program, names[name], points)
            program.api.clock.advance(minutes=1)
    listing = await program.client.get("/v1/directory")
    assert listing.status_code == 200
    assert listing.headers["cache-control"] == "no-cache" and listing.headers["etag"]
    items = listing.json()["items"]
    assert [(i["name"], i["level"]) for i in items] == [
        ("Zeta", "platinum"),
        ("Aaa Gold", "gold"),
        ("Mid", "gold"),
        ("Beta", "silver"),
        ("Alpha", "affiliate"),
    ]
    assert all(set(i) == PUBLIC_FIELDS for i in items)
    page = (await program.client.get("/v1/directory?per_page=2&page=2")).json()
    assert [i["name"] for i in page["items"]] == ["Mid", "Beta"]
    assert [i["name"] for i in (await program.client.get("/v1/directory?level=gold")).json()["items"]] == [
        "Aaa Gold",
        "Mid",
    ]


async def test_r18_directory_order_follows_a_level_down_as_well_as_up(program: Program) -> None:
    """The order is stored (partners.level_rank), kept in step by every level change: a refund that
    takes a partner back to Affiliate moves it down at once."""
    program.at("2026-01-05T09:00:00Z")
    was_gold, was_gold_key = await program.api.register(company="Aaa Was Gold")
    silver, silver_key = await program.api.register(company="Bbb Silver")
    await _points(program, (silver["id"], silver_key), [("desktop", 1)])
    customer = Customer.new()
    await program.register((was_gold["id"], was_gold_key), customer)
    placed = program.api.clock.advance(minutes=1)
    sent = await program.order(
        customer,
        [line("server-enterprise", 33, 330_000, line_id="l1")],
        placed_at=iso(placed),
        buyer=was_gold["id"],
    )

    async def listed() -> list[tuple[str, str]]:
        items = (await program.client.get("/v1/directory")).json()["items"]
        return [(i["name"], i["level"]) for i in items]

    assert await listed() == [("Aaa Was Gold", "gold"), ("Bbb Silver", "silver")]
    refunded_at = program.api.clock.advance(minutes=1)
    await program.refund(sent["event"]["data"]["order_id"], [("l1", 330_000)], at=iso(refunded_at))
    assert await listed() == [("Bbb Silver", "silver"), ("Aaa Was Gold", "affiliate")]
    level = (await program.client.get("/v1/directory?level=affiliate")).json()["items"]
    assert [i["name"] for i in level] == ["Aaa Was Gold"]


async def test_r18_filters_and_opt_out(program: Program) -> None:
    a, a_key = await program.api.register(company="Analytics Paris", country="FR", languages=["fr", "en"])
    b, _ = await program.api.register(company="Berlin Reports", country="DE", languages=["de"])
    await program.client.patch(
        f"/v1/partners/{a['id']}/directory-profile",
        json={
            "region": "Ile-de-France",
            "services": ["Qlik Sense reporting"],
            "description": "Qalyptus experts",
            "regions_served": ["Normandie"],
        },
        headers=program.api.bearer(a_key),
    )

    async def names(query: str) -> list[str]:
        response = await program.client.get(f"/v1/directory?{query}")
        assert response.status_code == 200, response.text
        return [i["name"] for i in response.json()["items"]]

    assert await names("q=reporting") == []  # R18: published once an admin approves it
    queue = (await program.client.get("/v1/directory-reviews?status=pending", headers=program.api.admin)).json()
    [review] = queue["items"]
    approved = await program.client.post(f"/v1/directory-reviews/{review['id']}/approve", headers=program.api.admin)
    assert approved.status_code == 200, approved.text
    assert await names("country=fr") == ["Analytics Paris"]
    assert await names("language=de") == ["Berlin Reports"]
    assert await names("region=normandie") == ["Analytics Paris"]
    assert await names("q=reporting") == ["Analytics Paris"]
    assert await names("q=qalyptus") == ["Analytics Paris"]
    opt_out = await program.client.patch(
        f"/v1/partners/{a['id']}/directory-profile", json={"listed": False}, headers=program.api.bearer(a_key)
    )
    assert opt_out.status_code == 200 and opt_out.json()["listed"] is False
    assert await names("") == ["Berlin Reports"]
    assert b


@pytest.mark.parametrize("action", ["suspend", "terminate"])
async def test_r18_suspended_or_terminated_partners_disappear_at_once(program: Program, action: str) -> None:
    p, _ = await program.api.register(company="Gone Soon")
    first = await program.client.get("/v1/directory")
    etag = first.headers["etag"]
    assert [i["name"] for i in first.json()["items"]] == ["Gone Soon"]
    unchanged = await program.client.get("/v1/directory", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == etag
    await program.client.post(f"/v1/partners/{p['id']}/{action}", json={"reason": "x"}, headers=program.api.admin)
    after = await program.client.get("/v1/directory", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.json()["items"] == [] and after.headers["etag"] != etag


async def test_r18_no_private_field_ever_appears(program: Program) -> None:
    secret_email = "private.contact@hidden.example"
    p, key = await program.api.register(company="Private Ltd", contact_email=secret_email, contact_name="Hidden Person")
    pending_settings = await program.client.patch(
        "/v1/program/settings", json={"auto_approve": False}, headers=program.api.admin
    )
    assert pending_settings.status_code == 200
    pending, _ = await program.api.register(company="Pending Ltd")
    body = (await program.client.get("/v1/directory")).text
    for private in (secret_email, "Hidden Person", key, key[:12], "contact_email", "points", "commission", "status"):
        assert private not in body
    assert "Pending Ltd" not in body
    assert p and pending


async def test_r20_brand_must_be_spelt_qalyptus(program: Program) -> None:
    p, key = await program.api.register()
    url = f"/v1/partners/{p['id']}/directory-profile"
    for field, value, found in (
        ("description", "We love QALYPTUS and qalyptus.", ["QALYPTUS", "qalyptus"]),
        ("services", ["QAlyptus training"], ["QAlyptus"]),
    ):
        response = await program.client.patch(url, json={field: value}, headers=program.api.bearer(key))
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "brand_misspelled" and problem["found"] == found and problem["field"] == field
        assert found[0] in problem["detail"]
    ok = await program.client.patch(
        url, json={"description": "Certified Qalyptus partner."}, headers=program.api.bearer(key)
    )
    assert ok.status_code == 200 and ok.json()["description"] == "Certified Qalyptus partner."


async def test_r17_free_licences_earn_nothing_and_cannot_be_sold(program: Program) -> None:
    p = await program.partner()
    url = f"/v1/partners/{p[0]}/nfr-licences"
    first = await program.client.post(url, json=NFR | {"sku": "server-enterprise"}, headers=program.api.bearer(p[1]))
    assert first.status_code == 201, first.text
    again = await program.client.post(url, json=NFR | {"sku": "server-enterprise"}, headers=program.api.bearer(p[1]))
    assert again.status_code == 409 and again.json()["code"] == "nfr_limit_reached"
    nfr_id = first.json()["licence_id"]
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    order = await program.order(
        c, [line("server-enterprise", 1, 300000, licence_id=nfr_id)], placed_at="2026-01-20T09:00:00Z", buyer=p[0]
    )
    assert await program.total_points(p) == 0 and await program.total_money(p) == 0
    assert order["receipt"]["reason_code"] == "nfr_licence_sold"
    store = {"Authorization": f"Bearer {await program.api.issue_key('store', ['store'])}"}
    quote = await program.client.post(
        "/v1/pricing/quote",
        json={
            "partner_id": p[0],
            "customer": c.store(),
            "currency": "EUR",
            "lines": [
                {
                    "sku": "server-enterprise",
                    "quantity": 1,
                    "kind": "renewal",
                    "list_amount": 300000,
                    "licence_id": nfr_id,
                }
            ],
        },
        headers=store,
    )
    assert quote.json()["rate_bp"] == 0 and quote.json()["no_discount_reason"] == "nfr_licence"
    flagged = (await program.client.get("/v1/nfr-violations", headers=program.api.admin)).json()["items"]
    assert sorted(v["source"] for v in flagged) == ["order", "quote"]
    revoked = await program.client.post(
        f"/v1/nfr-licences/{first.json()['id']}/revoke", json={"reason": "left"}, headers=program.api.admin
    )
    assert revoked.json()["revoked_at"] is not None
    listed = (await program.client.get(url, headers=program.api.bearer(p[1]))).json()["items"]
    assert [n["sku"] for n in listed] == ["server-enterprise"]
    assert t("2026-01-20T09:00:00Z")


async def test_r17_only_active_partners_take_free_licences(program: Program) -> None:
    p = await program.partner()
    await program.client.post(f"/v1/partners/{p[0]}/suspend", json={"reason": "x"}, headers=program.api.admin)
    response = await program.client.post(
        f"/v1/partners/{p[0]}/nfr-licences", json=NFR | {"sku": "desktop"}, headers=program.api.bearer(p[1])
    )
    assert response.status_code == 403 and response.json()["code"] == "partner_suspended"
    active = await program.partner()
    unknown = await program.client.post(
        f"/v1/partners/{active[0]}/nfr-licences", json=NFR | {"sku": "nothing"}, headers=program.api.bearer(active[1])
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_sku"


async def test_if_none_match_star_is_not_modified_for_the_directory_that_exists(program: Program) -> None:
    await program.api.register(company="Star Match")
    any_version = await program.client.get("/v1/directory", headers={"If-None-Match": "*"})
    assert any_version.status_code == 304
    current = await program.client.get("/v1/directory")
    assert any_version.headers["etag"] == current.headers["etag"]
    other = await program.client.get("/v1/directory", headers={"If-None-Match": '"not-this-one"'})
    assert other.status_code == 200
