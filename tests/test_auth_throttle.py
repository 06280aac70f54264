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
    # While throttled, even a right key is refused: a right guess must look like a wrong one.
    assert (await api.client.get("/v1/partners", headers=api.admin)).status_code == 429
    assert (await api.client.get("/v1/partners")).status_code == 429
    api.clock.advance(seconds=retry_after)
    assert (await api.client.get("/v1/partners", headers=api.admin)).status_code == 200
    assert (await api.client.get("/v1/partners")).status_code == 401
    overview = await api.client.get("/v1/dashboards/overview", headers=api.admin)
    assert overview.status_code == 200, overview.text
    # 3 refused + the 4th (refused, then throttled) + 1 missing key; throttled: the 4th and the next two.
    assert overview.json()["authentication_refusals"] == {"failed": 5, "throttled": 3}


async def test_the_store_webhook_is_not_throttled_by_failed_keys(api: Api) -> None:
    wrong = api.bearer("qpa_" + "y" * 43)
    for _ in range(4):
        await api.client.get("/v1/partners", headers=wrong)
    unsigned = await api.client.post("/v1/webhooks/store", content=b"{}", headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    assert unsigned.json()["code"] == "webhook_signature_missing"
