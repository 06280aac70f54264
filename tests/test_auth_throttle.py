"""Failed authentication is counted per client address and throttled past a limit per minute."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"failed_auth_limit": 3}


async def test_wrong_keys_past_the_limit_are_429_until_the_minute_ends(api: Api) -> None:
    wrong = api.bearer("qpa_" + "x" * 43)
    for _ in range(3):
        assert (await api.client.get("/v1/partners", headers=wrong)).status_code == 401
    throttled = await api.client.get("/v1/partners", headers=wrong)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "rate_limited"
    retry_after = int(throttled.headers["retry-after"])
    assert 0 < retry_after <= 60
    assert (await api.client.get("/v1/partners")).status_code == 429
    assert (await api.client.get("/v1/partners", headers=wrong)).status_code == 429
    api.clock.advance(seconds=retry_after)
    assert (await api.client.get("/v1/partners", headers=api.admin)).status_code == 200
    assert (await api.client.get("/v1/partners")).status_code == 401
    overview = await api.client.get("/v1/dashboards/overview", headers=api.admin)
    assert overview.status_code == 200, overview.text
    # 3 refused + the 4th (refused, then throttled) + 1 missing key; throttled: the 4th and the next two.
    assert overview.json()["authentication_refusals"] == {"failed": 5, "throttled": 3}


async def test_a_right_key_from_a_throttled_address_goes_through_while_wrong_ones_stay_429(api: Api) -> None:
    # One address (a shared NAT): someone mistypes keys until the address is throttled, while the
    # store behind the same address keeps asking for quotes and a partner keeps working.
    store = api.bearer(await api.issue_key("store", ["store"]))
    partner, partner_key = await api.register()
    issued = await api.client.post("/v1/api-keys", json={"kind": "admin", "name": "soon revoked"}, headers=api.admin)
    assert issued.status_code == 201, issued.text
    revoked = await api.client.delete(f"/v1/api-keys/{issued.json()['id']}", headers=api.admin)
    assert revoked.status_code == 200, revoked.text
    wrong = api.bearer("qpp_" + "z" * 43)
    for _ in range(3):
        assert (await api.client.get("/v1/partners", headers=wrong)).status_code == 401
    assert (await api.client.get("/v1/partners", headers=wrong)).status_code == 429

    quote = await api.client.post(
        "/v1/pricing/quote",
        json={
            "partner_id": partner["id"],
            "customer": {"company": "Behind NAT Ltd", "country": "GB", "email": "it@behind-nat.example"},
            "currency": "EUR",
            "lines": [{"sku": "desktop", "quantity": 2, "kind": "new", "list_amount": 51000}],
        },
        headers=store,
    )
    assert quote.status_code == 200, quote.text
    own = await api.client.get(f"/v1/partners/{partner['id']}", headers=api.bearer(partner_key))
    assert own.status_code == 200, own.text
    assert (await api.client.get("/v1/partners", headers=api.admin)).status_code == 200

    # Wrong, missing and revoked keys are still answered 429 until the minute ends.
    for headers in (wrong, {}, api.bearer(issued.json()["key"])):
        refused = await api.client.get("/v1/partners", headers=headers)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "rate_limited"


async def test_the_store_webhook_is_not_throttled_by_failed_keys(api: Api) -> None:
    wrong = api.bearer("qpa_" + "y" * 43)
    for _ in range(4):
        await api.client.get("/v1/partners", headers=wrong)
    unsigned = await api.client.post("/v1/webhooks/store", content=b"{}", headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    assert unsigned.json()["code"] == "webhook_signature_missing"
