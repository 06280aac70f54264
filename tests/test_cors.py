"""The public directory answers cross-origin requests from the configured origins, and only it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.main import create_app
from app.settings import Settings
from tests.conftest import Api

SITE = "https://www.qalyptus-site.example"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"cors_origins": [SITE, "http://localhost:5173"]}


async def test_the_directory_preflight_allows_revalidation(api: Api) -> None:
    preflight = await api.client.options(
        "/v1/directory",
        headers={
            "Origin": SITE,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == SITE
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "if-none-match" in preflight.headers["access-control-allow-headers"].lower()
    refused = await api.client.options(
        "/v1/directory",
        headers={"Origin": SITE, "Access-Control-Request-Method": "DELETE"},
    )
    assert refused.status_code == 400


async def test_the_directory_exposes_its_etag_to_the_allowed_origins_only(api: Api) -> None:
    first = await api.client.get("/v1/directory", headers={"Origin": SITE})
    assert first.status_code == 200
    assert first.headers["access-control-allow-origin"] == SITE
    assert "etag" in first.headers["access-control-expose-headers"].lower()
    etag = first.headers["etag"]
    again = await api.client.get("/v1/directory", headers={"Origin": SITE, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["access-control-allow-origin"] == SITE
    stranger = await api.client.get("/v1/directory", headers={"Origin": "https://elsewhere.example"})
    assert stranger.status_code == 200
    assert "access-control-allow-origin" not in stranger.headers


async def test_routes_for_api_keys_never_answer_cors(api: Api) -> None:
    answer = await api.client.get("/v1/partners", headers={"Origin": SITE, **api.admin})
    assert answer.status_code == 200
    assert not any(name.startswith("access-control-") for name in answer.headers)
    preflight = await api.client.options(
        "/v1/partners", headers={"Origin": SITE, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_no_origin_is_allowed_by_default() -> None:
    assert Settings(environment="test").cors_origins == []
    app = create_app(Settings(environment="test", worker="off"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        preflight = await client.options(
            "/v1/directory", headers={"Origin": SITE, "Access-Control-Request-Method": "GET"}
        )
    assert preflight.status_code == 405
    assert not any(name.startswith("access-control-") for name in preflight.headers)


@pytest.mark.parametrize(
    "origin", ["https://www.example.com/", "www.example.com", "ftp://x.example", "https://*.x.example"]
)
def test_an_origin_with_a_path_or_without_a_scheme_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(cors_origins=[origin])
