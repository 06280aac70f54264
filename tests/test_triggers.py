"""The database itself refuses what the program's rules forbid, whoever connects."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import Api
from tests.program import Customer, Program, line

APPEND_ONLY = ("points_entries", "money_entries", "statement_lines", "audit_events")
TRIGGERS = {
    *(f"{table}_no_{operation}" for table in APPEND_ONLY for operation in ("update", "delete")),
    "webhook_events_raw_kept",
    "statements_closed_no_update",
    "statements_closed_no_delete",
}


async def _triggers(api: Api, backend: str) -> set[str]:
    assert api.connection is not None
    if backend == "postgres":
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    return {row[0] for row in (await api.connection.execute(text(sql))).all()}


async def test_every_guard_trigger_exists_at_the_migration_head(api: Api, backend: str) -> None:
    expected = set(TRIGGERS)
    if backend == "postgres":
        expected |= {f"{table}_no_truncate" for table in APPEND_ONLY}
    assert expected <= await _triggers(api, backend)


async def _refused(api: Api, sql: str, **params: Any) -> str:
    assert api.connection is not None
    savepoint = await api.connection.begin_nested()
    with pytest.raises(DBAPIError) as refused:
        await api.connection.execute(text(sql), params)
    await savepoint.rollback()
    return str(refused.value.orig)


async def _closed_quarter(api: Api) -> tuple[Program, dict[str, Any]]:
    program = Program(api)
    p = await program.partner("2026-01-01T09:00:00Z")
    c = Customer.new()
    await program.register(p, c, at="2026-01-02T09:00:00Z")
    await program.order(c, [line("desktop", 1, 10000)], placed_at="2026-01-03T00:00:00Z")
    program.at("2026-04-02T00:00:00Z")
    closed = await api.client.post("/v1/quarters/2026-Q1/close", headers=api.admin)
    assert closed.status_code == 200, closed.text
    [statement] = closed.json()["statements"]
    return program, statement


async def test_ledgers_lines_and_audit_refuse_update_and_delete(api: Api) -> None:
    await _closed_quarter(api)
    for table in APPEND_ONLY:
        column = "id"
        assert "append-only" in await _refused(api, f"UPDATE {table} SET {column} = {column}")
        assert "append-only" in await _refused(api, f"DELETE FROM {table}")


async def test_a_stored_webhook_keeps_its_raw_body_and_id_but_its_status_may_change(api: Api) -> None:
    await _closed_quarter(api)
    assert api.connection is not None
    assert "raw body" in await _refused(api, "UPDATE webhook_events SET body = '{}'")
    assert "raw body" in await _refused(api, "UPDATE webhook_events SET webhook_id = 'other'")
    changed = await api.connection.execute(text("UPDATE webhook_events SET status = 'parked', attempts = attempts + 1"))
    assert changed.rowcount == 1  # type: ignore[attr-defined]


async def test_a_closed_quarters_statement_only_moves_draft_approved_paid(api: Api) -> None:
    _, statement = await _closed_quarter(api)
    sid = statement["id"]
    assert api.connection is not None
    where = "WHERE quarter = '2026-Q1'"
    assert "closed" in await _refused(api, f"UPDATE statements SET payable_amount = payable_amount + 1 {where}")
    assert "closed" in await _refused(api, f"UPDATE statements SET status = 'paid' {where}")  # skips approval
    assert "closed" in await _refused(api, f"DELETE FROM statements {where}")
    approved = await api.client.post(f"/v1/statements/{sid}/approve", headers=api.admin)
    assert approved.status_code == 200, approved.text
    assert "closed" in await _refused(api, f"UPDATE statements SET status = 'draft' {where}")
    paid = await api.client.post(
        f"/v1/statements/{sid}/mark-paid", json={"payment_reference": "PAY-1"}, headers=api.admin
    )
    assert paid.status_code == 200, paid.text
    assert "closed" in await _refused(api, f"UPDATE statements SET payment_reference = 'PAY-2' {where}")
