"""405 answers name every method the path serves, in the `Allow` header and in the detail."""

from __future__ import annotations

import pytest

from tests.conftest import Api


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/partners", "GET, POST"),
        ("PUT", "/health/live", "GET"),
        ("DELETE", "/v1/directory", "GET"),
        ("POST", "/v1/partners/prt_unknown", "GET, PATCH"),
        ("PUT", "/v1/webhooks/store", "POST"),
    ],
)
async def test_method_not_allowed_lists_the_allowed_methods(api: Api, method: str, path: str, allowed: str) -> None:
    response = await api.client.request(method, path, headers=api.admin)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    body = response.json()
    assert body["code"] == "method_not_allowed"
    assert body["detail"] == f"{method} is not allowed on {path}; allowed: {allowed}."
