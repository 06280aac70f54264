"""Every problem's `type` is `/problems/<code>`, a page the service serves that explains the code."""

from __future__ import annotations

import re
from pathlib import Path

from app.problems import PROBLEMS
from tests.conftest import Api

ROOT = Path(__file__).resolve().parent.parent


def _codes_in_the_source() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        text = path.read_text()
        codes |= set(re.findall(r'\bcode\s?=\s?"([a-z_]+)"', text))
        codes |= set(re.findall(r'refuse\(\s*"([a-z_]+)"', text))
    codes |= {"route_not_found", "method_not_allowed", "malformed_body", "http_error"}  # app/errors.py's table
    return codes - {"domain_error"}  # the base class's placeholder, never answered


def test_every_code_the_service_answers_has_a_page() -> None:
    assert sorted(_codes_in_the_source() - set(PROBLEMS)) == []


async def test_problem_types_resolve_to_pages_that_explain_the_code(api: Api) -> None:
    missing = await api.client.get("/v1/partners")
    unknown_route = await api.client.get("/v1/nothing-here")
    invalid = await api.client.get("/v1/partners?limit=0", headers=api.admin)
    for response, code in (
        (missing, "missing_api_key"),
        (unknown_route, "route_not_found"),
        (invalid, "validation_failed"),
    ):
        body = response.json()
        assert (body["code"], body["type"]) == (code, f"/problems/{code}")
        page = await api.client.get(body["type"])
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert f"<h1><code>{code}</code></h1>" in page.text
        assert f"<p>HTTP status {response.status_code}.</p>" in page.text
        assert "<h2>What to do</h2>" in page.text


async def test_the_index_lists_every_code_and_an_unknown_code_is_not_found(api: Api) -> None:
    index = await api.client.get("/problems")
    assert re.findall(r'href="/problems/([a-z_]+)"', index.text) == list(PROBLEMS)
    unknown = await api.client.get("/problems/no_such_code")
    assert unknown.status_code == 404 and unknown.json()["type"] == "/problems/not_found"
