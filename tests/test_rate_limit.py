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


async def test_the_window_slides_so_no_boundary_lets_twice_the_limit_through(api: Api) -> None:
    # Just before a moment a clock-aligned window would start afresh.
    epoch = int(api.clock.now().timestamp())
    api.clock.advance(seconds=600 - epoch % 600 - 2)
    for _ in range(3):
        await api.register()
    api.clock.advance(seconds=4)  # past the aligned boundary, 4 s after the three
    refused = await api.client.post("/v1/partners", json=api.registration())
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 596  # when the first of the three leaves the window
    api.clock.advance(seconds=595)
    assert (await api.client.post("/v1/partners", json=api.registration())).status_code == 429
    api.clock.advance(seconds=1)  # the three, admitted together, leave the window together
    for _ in range(3):
        await api.register()
    refused = await api.client.post("/v1/partners", json=api.registration())
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 600


async def test_hits_spread_over_the_window_leave_it_one_by_one(api: Api) -> None:
    for _ in range(3):
        await api.register()
        api.clock.advance(seconds=200)
    # 600 s after the first: it has left the window, the two others have not.
    await api.register()
    refused = await api.client.post("/v1/partners", json=api.registration())
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 200
