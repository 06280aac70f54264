"""405 answers name every method the path serves, in the `Allow` header and in the detail; HEAD is
answered wherever GET is."""

from __future__ import annotations

import pytest

from tests.conftest import Api


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/partners", "GET, HEAD, POST"),
        ("PUT", "/health/live", "GET, HEAD"),
        ("DELETE", "/v1/directory", "GET, HEAD"),
        ("POST", "/v1/partners/prt_unknown", "GET, HEAD, PATCH"),
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


@pytest.mark.parametrize("path", ["/v1/directory", "/health/live", "/v1/agreements/current", "/openapi.json"])
async def test_head_answers_as_get_without_a_body(api: Api, path: str) -> None:
    get = await api.client.get(path)
    head = await api.client.head(path)
    assert (head.status_code, get.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))
    if "etag" in get.headers:
        assert head.headers["etag"] == get.headers["etag"]


async def test_head_runs_the_checks_of_the_get(api: Api) -> None:
    partner, key = await api.register()
    refused = await api.client.head(f"/v1/partners/{partner['id']}")
    assert (refused.status_code, refused.content) == (401, b"")
    allowed = await api.client.head(f"/v1/partners/{partner['id']}", headers=api.bearer(key))
    assert (allowed.status_code, allowed.content) == (200, b"")
    post_only = await api.client.head("/v1/webhooks/store")
    assert (post_only.status_code, post_only.headers["allow"], post_only.content) == (405, "POST", b"")


async def test_a_head_request_is_logged_and_timed_under_its_route(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    await api.client.head("/v1/directory")
    [line] = [line for line in capsys.readouterr().err.splitlines() if "app.request" in line]
    assert " HEAD /v1/directory 200 client=127.0.0.1 method=HEAD route=/v1/directory " in line
