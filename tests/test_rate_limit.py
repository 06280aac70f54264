"""The public registration endpoint is limited per client address, across workers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"registration_rate_limit": 3, "registration_rate_window_seconds": 600}


async def test_registration_is_rate_limited_per_address(api: Api) -> None:
    for _ in range(3):
        await api.register()
    response = await api.client.post("/v1/partners", json=api.registration())
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= 600
    api.clock.advance(seconds=retry_after)
    await api.register()


async def test_refused_registrations_count_towards_the_limit(api: Api) -> None:
    for _ in range(3):
        duplicate = await api.client.post("/v1/partners", json=api.registration(accepted_agreement_version="old"))
        assert duplicate.status_code == 422
    response = await api.client.post("/v1/partners", json=api.registration())
    assert response.status_code == 429
