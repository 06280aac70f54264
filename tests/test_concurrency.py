"""Truly concurrent requests against a real server and a database that really commits."""

from __future__ import annotations

import asyncio
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
