"""The vendor's customers: bulk import (JSON and CSV, idempotent), search, sales-process flag."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.program import Customer, Program, iso


@pytest.fixture
def program(api: Api) -> Program:
    return Program(api)


async def test_json_import_is_idempotent(program: Program) -> None:
    body = {
        "customers": [
            {"company": "Alpha SA", "country": "FR", "vat_id": "FR40303265045"},
            {"company": "Beta GmbH", "country": "DE", "domain": "beta.example", "store_customer_id": "cus_b"},
            {"company": "Nobody", "country": "DE", "domain": "gmail.com"},
        ]
    }
    first = await program.client.post("/v1/customer-imports", json=body, headers=program.api.admin)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "created": 2,
        "marked_existing": 0,
        "unchanged": 0,
        "errors": [{"row": 2, "detail": "no strong identifier (vat_id, business domain or store_customer_id)"}],
    }
    second = await program.client.post("/v1/customer-imports", json=body, headers=program.api.admin)
    assert second.json()["created"] == 0 and second.json()["unchanged"] == 2
    found = (await program.client.get("/v1/customers?vat_id=fr40303265045", headers=program.api.admin)).json()["items"]
    assert [c["company"] for c in found] == ["Alpha SA"] and found[0]["existing"] is True
    assert found[0]["identifiers"] == ["vat:FR40303265045"]


async def test_csv_import_marks_a_registered_prospect_as_existing(program: Program) -> None:
    p = await program.partner()
    prospect = Customer.new()
    registered = (await program.register(p, prospect)).json()
    csv = (
        "company,country,vat_id,domain,store_customer_id\n"
        f"{prospect.company},FR,,{prospect.domain},\n"
        "Gamma Ltd,GB,GB980780684,,\n"
    )
    imported_at = iso(program.api.clock.now())
    response = await program.client.post(
        "/v1/customer-imports/csv", content=csv.encode(), headers={**program.api.admin, "content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 1, "marked_existing": 1, "unchanged": 0, "errors": []}
    customer = (
        await program.client.get(f"/v1/customers/{registered['customer_id']}", headers=program.api.admin)
    ).json()
    assert customer["existing"] is True and customer["imported_at"] == imported_at


@pytest.mark.parametrize(
    ("csv", "code"),
    [
        ("name,country\nA,FR\n", "csv_header_invalid"),
        ("company,country\n", "csv_empty"),
        ("company,country\nA,XX\n", "csv_row_invalid"),
    ],
)
async def test_bad_csv_is_refused_with_a_reason(program: Program, csv: str, code: str) -> None:
    response = await program.client.post(
        "/v1/customer-imports/csv", content=csv.encode(), headers={**program.api.admin, "content-type": "text/csv"}
    )
    assert response.status_code == 422 and response.json()["code"] == code


async def test_not_utf8_csv_is_refused(program: Program) -> None:
    response = await program.client.post(
        "/v1/customer-imports/csv",
        content=b"company,country\n\xff\xfe,FR\n",
        headers={**program.api.admin, "content-type": "text/csv"},
    )
    assert response.status_code == 422 and response.json()["code"] == "csv_unreadable"


async def test_imports_and_flags_are_admin_write_and_audited(program: Program) -> None:
    p = await program.partner()
    body = {"customers": [{"company": "Alpha SA", "country": "FR", "vat_id": "FR40303265045"}]}
    assert (
        await program.client.post("/v1/customer-imports", json=body, headers=program.api.bearer(p[1]))
    ).status_code == 403
    await program.client.post("/v1/customer-imports", json=body, headers=program.api.admin)
    audit = (await program.client.get("/v1/audit-events?action=customers.imported", headers=program.api.admin)).json()
    assert audit["items"][0]["after"]["created"] == 1


async def test_terms_in_force_at_a_moment(program: Program) -> None:
    now = (await program.client.get("/v1/program/terms", headers=program.api.admin)).json()
    assert now["version"] == 1 and now["terms"]["points_per_sku"]["server-enterprise"] == 5
    assert now["terms"]["levels"][3] == {"level": "platinum", "min_points": 265, "rate_bp": 3000}
    old = await program.client.get("/v1/program/terms?at=1999-01-01T00:00:00Z", headers=program.api.admin)
    assert old.status_code == 404 and old.json()["code"] == "no_terms"
    bad = {**now["terms"], "levels": list(reversed(now["terms"]["levels"]))}
    refused = await program.client.post(
        "/v1/program/terms", json={"effective_from": "2027-01-01T00:00:00Z", "terms": bad}, headers=program.api.admin
    )
    assert refused.status_code == 422 and refused.json()["code"] == "validation_failed"
    assert any("levels" in e["message"].lower() for e in refused.json()["errors"]), refused.json()
