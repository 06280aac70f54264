"""Truly concurrent requests against a real server and a database that really commits."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.slow


async def test_same_partner_registered_at_once_exactly_one_wins(live_api: Api) -> None:
    body = live_api.registration(contact_email="race@acme.example")
    responses = await asyncio.gather(*(live_api.client.post("/v1/partners", json=body) for _ in range(12)))
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 409: 11}, [r.text for r in responses if r.status_code not in (201, 409)]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"partner_already_registered"}
    listed = await live_api.client.get("/v1/partners?q=race@acme", headers=live_api.admin)
    assert len(listed.json()["items"]) == 1


async def test_different_partners_registered_at_once_all_succeed(live_api: Api) -> None:
    bodies = [live_api.registration() for _ in range(16)]
    responses = await asyncio.gather(*(live_api.client.post("/v1/partners", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [201] * 16
    listed = await live_api.client.get("/v1/partners?limit=200", headers=live_api.admin)
    assert len(listed.json()["items"]) == 16


async def test_one_suspension_wins_when_admins_race(live_api: Api) -> None:
    partner, _ = await live_api.register()
    url = f"/v1/partners/{partner['id']}/suspend"
    responses = await asyncio.gather(
        *(live_api.client.post(url, json={"reason": f"admin {i}"}, headers=live_api.admin) for i in range(10))
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 409: 9}
    history = (
        await live_api.client.get(f"/v1/partners/{partner['id']}/status-history", headers=live_api.admin)
    ).json()["items"]
    assert [h["to_status"] for h in history] == ["active", "suspended"]
    audit = await live_api.client.get(
        f"/v1/audit-events?action=partner.suspend&object_id={partner['id']}", headers=live_api.admin
    )
    assert len(audit.json()["items"]) == 1


async def test_key_use_under_load_records_last_use_once(live_api: Api) -> None:
    partner, key = await live_api.register()
    responses = await asyncio.gather(
        *(live_api.client.get(f"/v1/partners/{partner['id']}", headers=live_api.bearer(key)) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {200}
    keys = (await live_api.client.get(f"/v1/partners/{partner['id']}/api-keys", headers=live_api.admin)).json()["items"]
    first_use = live_api.clock.now()
    assert keys[0]["last_used_at"] == first_use.isoformat().replace("+00:00", "Z")
    live_api.clock.advance(seconds=30)
    await live_api.client.get(f"/v1/partners/{partner['id']}", headers=live_api.bearer(key))
    keys = (await live_api.client.get(f"/v1/partners/{partner['id']}/api-keys", headers=live_api.admin)).json()["items"]
    assert keys[0]["last_used_at"] == first_use.isoformat().replace("+00:00", "Z")  # not rewritten within a minute


async def test_overlapping_customer_imports_at_once_all_succeed_and_make_each_customer_once(live_api: Api) -> None:
    # Some customers are known by their domain already; the imports name them with a store id too.
    # Each import holds an overlapping share of the customers, in its own order.
    pool = [
        {
            "company": f"Overlap {n} BV",
            "country": "NL",
            "domain": f"overlap{n}.example",
            "store_customer_id": f"cus_ov{n}",
        }
        for n in range(36)
    ]
    known = [{k: v for k, v in row.items() if k != "store_customer_id"} for row in pool[::3]]
    first = await live_api.client.post("/v1/customer-imports", json={"customers": known}, headers=live_api.admin)
    assert first.status_code == 200 and first.json()["created"] == len(known), first.text
    shuffle = random.Random(1609)
    imports = [shuffle.sample(pool, 24) for _ in range(16)]
    responses = await asyncio.gather(
        *(
            live_api.client.post("/v1/customer-imports", json={"customers": rows}, headers=live_api.admin)
            for rows in imports
        )
    )
    assert [r.status_code for r in responses] == [200] * 16, [r.text for r in responses if r.status_code != 200]
    assert sum(r.json()["created"] for r in responses) == len(pool) - len(known)
    assert all(r.json()["errors"] == [] for r in responses)
    listed = await live_api.client.get("/v1/customers?q=Overlap&limit=200", headers=live_api.admin)
    customers = listed.json()["items"]
    assert len(customers) == len(pool)
    assert all(c["existing"] for c in customers)
    named = {c["company"]: sorted(c["identifiers"]) for c in customers}
    in_any = {row["company"] for rows in imports for row in rows}
    for row in pool:
        expected = [f"domain:{row['domain']}"]
        if row["company"] in in_any:
            expected.append(f"store_id:{row['store_customer_id']}")
        assert named[row["company"]] == expected
