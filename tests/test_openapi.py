"""The committed OpenAPI document is the one the app serves, and it is well-formed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from app.main import create_app

COMMITTED = Path(__file__).parent.parent / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    served = create_app().openapi()
    committed = json.loads(COMMITTED.read_text())
    assert committed == served, "openapi/openapi.json is stale: run `uv run partners openapi`"


async def test_openapi_and_docs_are_served() -> None:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        document = await client.get("/openapi.json")
        docs = await client.get("/docs")
    assert document.status_code == 200 and document.json() == json.loads(COMMITTED.read_text())
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_docs_pages_load_every_asset_from_the_service_itself() -> None:
    """Swagger UI and ReDoc work without internet: the pages name no other host, and every script,
    style and icon they load is served by the app."""
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for page, marker in (("/docs", "SwaggerUIBundle"), ("/redoc", "<redoc ")):
            response = await client.get(page)
            assert response.status_code == 200 and marker in response.text
            html = response.text
            assert re.findall(r"(?:https?:)?//[^\s\"'<>]+", html) == [], f"{page} names another host"
            assets = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert assets, f"{page} loads no asset"
            for asset in assets:
                assert asset.startswith("/"), asset
                loaded = await client.get(asset)
                assert loaded.status_code == 200 and len(loaded.content) > 1000, asset
            # The document the page reads is the one the app serves.
            assert "/openapi.json" in html
        redirect = await client.get("/docs/oauth2-redirect")
        assert redirect.status_code == 200
        missing = await client.get("/docs/assets/nothing.js")
        assert missing.status_code == 404


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    document = json.loads(COMMITTED.read_text())
    return [(path, method, operation) for path, item in document["paths"].items() for method, operation in item.items()]


def test_operation_ids_are_clean_and_unique() -> None:
    ids = [op["operationId"] for _, _, op in _operations()]
    assert len(ids) == len(set(ids))
    assert all(i.isidentifier() and i.islower() and "__" not in i for i in ids), ids


def test_every_error_answer_is_declared_as_problem_json() -> None:
    for path, method, operation in _operations():
        responses = operation["responses"]
        if operation.get("security"):
            assert {"401", "403"} <= set(responses), (method, path)
        assert "422" in responses, (method, path)  # unknown query parameters are refused everywhere
        for code, response in responses.items():
            if int(code) >= 400 and not path.startswith("/health/"):
                assert list(response["content"]) == ["application/problem+json"], (method, path, code)


async def test_unknown_query_parameters_are_refused() -> None:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/health/live?verbose=1")
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "query.verbose", "message": "Unknown query parameter.", "type": "extra_forbidden"}
    ]


def test_links_name_operations_and_their_parameters() -> None:
    """Every OpenAPI link targets an operation of the document and fills only parameters it has."""
    operations = {op["operationId"]: op for _, _, op in _operations()}
    count = 0
    for path, method, operation in _operations():
        for status, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                count += 1
                target = operations.get(link["operationId"])
                assert target is not None, (method, path, status, name)
                accepted = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= accepted, (method, path, status, name)
    assert count, "the document has no links"
