"""CSV exports: formula-looking text is neutralised, numbers stay numbers, long exports stream in batches."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from app.routers import csv_export
from tests.conftest import Api
from tests.program import Customer, Program, line


@pytest.fixture
def program(api: Api) -> Program:
    return Program(api)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_formula_cells_are_neutralised_and_numbers_stay_numbers() -> None:
    written = csv_export.text(
        [["=1+2", "+33 1 23", "-x", "@SUM(A1)", "\tTab", "\rReturn", "Acme", -1500, 0, None, True, ["=a", "b"]]]
    )
    assert next(csv.reader(io.StringIO(written, newline=""))) == [
        "'=1+2",
        "'+33 1 23",
        "'-x",
        "'@SUM(A1)",
        "'\tTab",
        "'\rReturn",
        "Acme",
        "-1500",
        "0",
        "",
        "true",
        '["=a","b"]',
    ]


async def test_statement_csvs_neutralise_a_company_named_as_a_formula(program: Program) -> None:
    program.at("2026-01-01T09:00:00Z")
    partner, key = await program.api.register(company='=HYPERLINK("http://evil.example","Acme")')
    p = (partner["id"], key)
    customer = Customer(company="@SUM(A1) Contoso SA", domain="contoso-formula.example", store_customer_id="cus_f")
    await program.register(p, customer, at="2026-01-02T09:00:00Z")
    await program.order(customer, [line("desktop", 1, 10000)], placed_at="2026-02-01T10:00:00Z")
    program.at("2026-04-01T00:00:00Z")
    closed = await program.client.post("/v1/quarters/2026-Q1/close", headers=program.api.admin)
    [statement] = [s for s in closed.json()["statements"] if s["partner_id"] == p[0]]
    lines = await program.client.get(f"/v1/partners/{p[0]}/statements/{statement['id']}/csv", headers=program.api.admin)
    [row] = _rows(lines.text)
    assert (row["customer"], row["amount"]) == ("'@SUM(A1) Contoso SA", "2000")
    export = await program.client.get("/v1/quarters/2026-Q1/statements.csv", headers=program.api.admin)
    [exported] = _rows(export.text)
    assert (exported["company"], exported["payable_amount"]) == ('\'=HYPERLINK("http://evil.example","Acme")', "2000")


async def test_partners_export_streams_every_partner_in_batches(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_export, "BATCH", 2)
    for n in range(5):
        api.clock.advance(minutes=1)
        await api.register(company=f"-Minus {n} GmbH" if n == 0 else f"Export {n} GmbH", country="DE")
    listed = (await api.client.get("/v1/partners?limit=200", headers=api.admin)).json()["items"]
    response = await api.client.get("/v1/partners.csv", headers=api.admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="partners.csv"'
    rows = _rows(response.text)
    assert [r["id"] for r in rows] == [p["id"] for p in listed]
    assert [r["company"] for r in rows] == [
        "Export 4 GmbH",
        "Export 3 GmbH",
        "Export 2 GmbH",
        "Export 1 GmbH",
        "'-Minus 0 GmbH",
    ]
    assert rows[0]["languages"] == '["de","en"]' and rows[0]["listed"] == "true"
    filtered = await api.client.get("/v1/partners.csv?q=export%203", headers=api.admin)
    assert [r["company"] for r in _rows(filtered.text)] == ["Export 3 GmbH"]


async def test_ledger_exports_hold_the_same_entries_as_the_json(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_export, "BATCH", 1)
    p = await program.partner("2026-01-01T09:00:00Z")
    customer = Customer.new()
    await program.register(p, customer, at="2026-01-02T09:00:00Z")
    await program.order(
        customer, [line("desktop", 1, 10000), line("server-business", 1, 50000)], placed_at="2026-02-01T10:00:00Z"
    )
    for ledger, integer_columns in (
        ("points-entries", ("id", "points", "order_line_id", "terms_version")),
        ("money-entries", ("id", "amount", "order_line_id", "rate_bp", "base_amount", "terms_version")),
    ):
        as_json = (await program.client.get(f"/v1/partners/{p[0]}/{ledger}", headers=program.api.bearer(p[1]))).json()
        response = await program.client.get(f"/v1/partners/{p[0]}/{ledger}.csv", headers=program.api.bearer(p[1]))
        assert response.status_code == 200
        parsed: list[dict[str, Any]] = []
        for row in _rows(response.text):
            entry: dict[str, Any] = {k: (v or None) for k, v in row.items()}
            for column in integer_columns:
                entry[column] = None if entry[column] is None else int(entry[column])
            parsed.append(entry)
        assert len(parsed) >= 2
        assert parsed == as_json["items"]


async def test_a_ledger_export_of_another_partner_is_not_found(program: Program) -> None:
    p = await program.partner()
    other = await program.partner()
    response = await program.client.get(f"/v1/partners/{p[0]}/money-entries.csv", headers=program.api.bearer(other[1]))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "partner_not_found"


async def test_audit_export_streams_the_log_with_json_columns(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_export, "BATCH", 2)
    partner, _ = await api.register()
    await api.client.post(f"/v1/partners/{partner['id']}/suspend", json={"reason": "=cmd"}, headers=api.admin)
    listed = (await api.client.get("/v1/audit-events?limit=200", headers=api.admin)).json()["items"]
    response = await api.client.get("/v1/audit-events.csv", headers=api.admin)
    rows = _rows(response.text)
    assert [int(r["id"]) for r in rows] == [e["id"] for e in listed]
    assert [json.loads(r["after"]) if r["after"] else None for r in rows] == [e["after"] for e in listed]
    only = await api.client.get(
        f"/v1/audit-events.csv?object_id={partner['id']}&action=partner.suspend", headers=api.admin
    )
    [suspension] = _rows(only.text)
    assert suspension["object_id"] == partner["id"]
    partner_key = (await api.register())[1]
    refused = await api.client.get("/v1/audit-events.csv", headers=api.bearer(partner_key))
    assert refused.status_code == 403 and refused.json()["code"] == "admin_key_required"
