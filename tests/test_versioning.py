"""Deprecations are announced the one way docs/api-versioning.md says: in the OpenAPI document, in
the headers of every answer, and in the changelog, from one table (app/deprecation.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from app.deprecation import DEPRECATED, MIN_NOTICE, Deprecation
from tests.conftest import Api

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = json.loads((ROOT / "openapi" / "openapi.json").read_text())
CHANGELOG = (ROOT / "CHANGELOG.md").read_text()


def _operations() -> dict[str, tuple[str, str, dict[str, object]]]:
    return {
        operation["operationId"]: (method, path, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
    }


def test_the_deprecation_table_and_the_openapi_document_agree() -> None:
    marked = {name for name, (_, _, operation) in _operations().items() if operation.get("deprecated")}
    assert marked == set(DEPRECATED)


@pytest.mark.parametrize("operation_id", sorted(DEPRECATED))
def test_each_deprecation_is_in_the_changelog_with_its_dates(operation_id: str) -> None:
    method, path, _ = _operations()[operation_id]
    deprecation = DEPRECATED[operation_id]
    deprecated = CHANGELOG[CHANGELOG.index("### Deprecated") :]
    entry = next(line for line in deprecated.splitlines() if f"`{method.upper()} {path}`" in line)
    assert f"deprecated on {deprecation.since.isoformat()}" in entry
    assert f"sunset on {deprecation.sunset.isoformat()}" in entry


async def test_a_deprecated_route_says_so_on_every_answer(api: Api) -> None:
    answer = await api.client.get("/v1/discount-mismatches", headers=api.admin)
    assert answer.status_code == 200
    deprecation = DEPRECATED["list_discount_mismatches"]
    assert answer.headers["deprecation"] == f"@{int(datetime(2026, 11, 30, tzinfo=UTC).timestamp())}"
    assert parsedate_to_datetime(answer.headers["sunset"]).date() == deprecation.sunset
    assert answer.headers["link"] == '</v1/order-flags?kind=discount_mismatch>; rel="successor-version"'
    current = await api.client.get("/v1/order-flags", headers=api.admin)
    assert current.status_code == 200
    assert "deprecation" not in current.headers and "sunset" not in current.headers


def test_a_sunset_sooner_than_six_months_is_refused() -> None:
    with pytest.raises(ValueError, match="182 days"):
        Deprecation(since=date(2027, 1, 1), sunset=date(2027, 3, 1), successor="/v1/x")
    assert all(d.sunset - d.since >= MIN_NOTICE for d in DEPRECATED.values())
