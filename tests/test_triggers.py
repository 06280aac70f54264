"""The database itself refuses what the program's rules forbid, whoever connects."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import Api
from tests.program import Customer, Program, line

APPEND_ONLY = ("points_entries", "money_entries", "statement_lines", "audit_events")
HISTORY = ("rejected_webhook_events", "partner_status_changes", "agreement_acceptances")
"""Append-only too, from migration 1a9d0f3a4b04."""
TRIGGERS = {
    *(f"{table}_no_{operation}" for table in (*APPEND_ONLY, *HISTORY) for operation in ("update", "delete")),
    "webhook_events_raw_kept",
    "webhook_events_no_delete",
    "program_terms_versions_no_delete",
    "program_terms_versions_only_add_skus",
    "quarter_closes_no_delete",
    "quarter_closes_counted_once",
    "statements_closed_no_insert",
    "statements_closed_no_update",
    "statements_closed_no_delete",
    "statement_lines_closed_no_insert",
}
TRUNCATE_GUARDED = (*APPEND_ONLY, *HISTORY, "program_terms_versions", "webhook_events", "quarter_closes", "statements")
"""Postgres only: SQLite has no TRUNCATE."""


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
        expected |= {f"{table}_no_truncate" for table in TRUNCATE_GUARDED} | {"quarter_closes_counted_at_commit"}
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


# --- history and closed periods (migration 1a9d0f3a4b04) ------------------------------------------


def _new_id(api: Api) -> str:
    assert api.connection is not None
    if api.connection.dialect.name == "postgresql":
        return "gen_random_uuid()"
    return "lower(hex(randomblob(16)))"


async def test_a_closed_quarter_is_never_reopened_renamed_or_recounted(api: Api, backend: str) -> None:
    await _closed_quarter(api)
    assert api.connection is not None
    where = "WHERE quarter = '2026-Q1'"
    for change in ("quarter = '2025-Q4'", "statements = statements + 1", "statements = -1", "closed_by = 'x'"):
        assert "statement count" in await _refused(api, f"UPDATE quarter_closes SET {change} {where}")
    assert "stays closed" in await _refused(api, f"DELETE FROM quarter_closes {where}")
    if backend == "postgres":  # the close's count is checked now, not at the (never reached) commit
        await api.connection.execute(text("SET CONSTRAINTS quarter_closes_counted_at_commit IMMEDIATE"))
        assert "stays closed" in await _refused(api, "TRUNCATE quarter_closes CASCADE")
        assert "kept" in await _refused(api, "TRUNCATE statements CASCADE")


async def test_nothing_is_added_to_a_closed_quarter_but_an_open_one_takes_it(api: Api) -> None:
    await _closed_quarter(api)
    assert api.connection is not None
    copy = (
        "INSERT INTO statements (id, partner_id, quarter, currency, status, opening_balance, lines_total, "
        "closing_balance, payable_amount, payout_date, created_at) "
        f"SELECT {_new_id(api)}, partner_id, :quarter, 'USD', 'draft', 0, 7300, 7300, 7300, payout_date, created_at "
        "FROM statements WHERE quarter = '2026-Q1'"
    )
    assert "closed" in await _refused(api, copy, quarter="2026-Q1")
    forged_line = (
        "INSERT INTO statement_lines (statement_id, money_entry_id, amount, label) "
        "SELECT statement_id, money_entry_id, 7300, 'forged' FROM statement_lines"
    )
    assert "closed quarter" in await _refused(api, forged_line)
    savepoint = await api.connection.begin_nested()
    added = await api.connection.execute(text(copy), {"quarter": "2026-Q2"})  # an open quarter: allowed
    assert added.rowcount == 1  # type: ignore[attr-defined]
    await savepoint.rollback()


async def test_a_closed_quarters_statement_moves_only_as_the_transitions_table_lists(api: Api) -> None:
    """The triggers read the moves from one table: payout runs added `in_payment` (approved ->
    in_payment -> paid, or back to approved when the bank returns the transfer), each move setting only
    the fields it names; a move not listed is refused."""
    _, statement = await _closed_quarter(api)
    assert api.connection is not None
    where = "WHERE quarter = '2026-Q1'"
    listed = (
        await api.connection.execute(text("SELECT from_status, to_status, sets FROM statement_transitions"))
    ).all()
    assert sorted(map(tuple, listed)) == [
        ("approved", "in_payment", "none"),
        ("approved", "paid", "payment"),
        ("draft", "approved", "approval"),
        ("in_payment", "approved", "none"),
        ("in_payment", "paid", "payment"),
    ]
    assert "closed" in await _refused(api, f"UPDATE statements SET status = 'in_payment' {where}")  # a draft
    approved = await api.client.post(f"/v1/statements/{statement['id']}/approve", headers=api.admin)
    assert approved.status_code == 200, approved.text
    assert "closed" in await _refused(api, f"UPDATE statements SET status = 'in_payment', approved_by = 'x' {where}")
    assert "closed" in await _refused(
        api, f"UPDATE statements SET status = 'in_payment', payment_reference = 'x' {where}"
    )
    moved = await api.connection.execute(text(f"UPDATE statements SET status = 'in_payment' {where}"))
    assert moved.rowcount == 1  # type: ignore[attr-defined]
    assert "closed" in await _refused(api, f"UPDATE statements SET status = 'draft' {where}")  # not listed
    back = await api.connection.execute(text(f"UPDATE statements SET status = 'approved' {where}"))
    assert back.rowcount == 1  # type: ignore[attr-defined]
    await api.connection.execute(text(f"UPDATE statements SET status = 'in_payment' {where}"))
    paid = await api.connection.execute(
        text(f"UPDATE statements SET status = 'paid', paid_at = created_at, payment_reference = 'PR-1' {where}")
    )
    assert paid.rowcount == 1  # type: ignore[attr-defined]
    assert "closed" in await _refused(api, f"UPDATE statements SET status = 'in_payment' {where}")  # paid stays


async def test_history_tables_refuse_update_and_delete(api: Api, backend: str) -> None:
    program, _ = await _closed_quarter(api)
    assert api.connection is not None
    p = await program.partner("2026-04-03T09:00:00Z")
    await api.client.post(f"/v1/partners/{p[0]}/suspend", json={"reason": "checks"}, headers=api.admin)
    signed_but_malformed = b'{"type": "order.paid", "data": {}}'
    rejected = await api.client.post(
        "/v1/webhooks/store", content=signed_but_malformed, headers=api.signed("msg_trig_1", signed_but_malformed)
    )
    assert rejected.status_code == 422, rejected.text
    for table in (*HISTORY, "program_terms_versions"):
        count = (await api.connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
        assert count > 0, table  # each holds a row, so the row triggers fire
    updates = {
        "rejected_webhook_events": "body = '{}'",
        "partner_status_changes": "reason = 'rewritten'",
        "agreement_acceptances": "accepted_at = accepted_at",
    }
    for table, change in updates.items():
        assert "append-only" in await _refused(api, f"UPDATE {table} SET {change}")
        assert "append-only" in await _refused(api, f"DELETE FROM {table}")
        if backend == "postgres":
            assert "append-only" in await _refused(api, f"TRUNCATE {table} CASCADE")
    assert "kept for ever" in await _refused(api, "DELETE FROM webhook_events")
    if backend == "postgres":
        assert "kept for ever" in await _refused(api, "TRUNCATE webhook_events CASCADE")


async def test_r22_a_declared_identifier_is_only_ever_withdrawn_once(api: Api, backend: str) -> None:
    """The identifier history the own-company check reads: a row is never deleted or rewritten; the
    one change it takes is its withdrawal, once, and the service's own withdrawal still works."""
    assert api.connection is not None
    partner, key = await api.register(website="https://first-r22-trigger.example")
    moved = await api.client.patch(
        f"/v1/partners/{partner['id']}", json={"website": "https://second-r22-trigger.example"}, headers=api.bearer(key)
    )
    assert moved.status_code == 200, moved.text
    where = "value = 'first-r22-trigger.example'"
    withdrawn = (
        await api.connection.execute(text(f"SELECT withdrawn_at FROM partner_identifiers WHERE {where}"))
    ).scalar_one()
    assert withdrawn is not None  # the service withdrew it
    reason = "only withdrawn, once"
    assert reason in await _refused(api, f"UPDATE partner_identifiers SET withdrawn_at = NULL WHERE {where}")
    assert reason in await _refused(api, f"UPDATE partner_identifiers SET value = 'elsewhere.example' WHERE {where}")
    assert reason in await _refused(api, "DELETE FROM partner_identifiers")
    current = "value = 'second-r22-trigger.example'"
    assert reason in await _refused(
        api, f"UPDATE partner_identifiers SET declared_at = declared_at, kind = 'vat' WHERE {current}"
    )
    if backend == "postgres":
        assert reason in await _refused(api, "TRUNCATE partner_identifiers CASCADE")


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_close_cannot_commit_without_its_count(api: Api, backend: str) -> None:
    """The close made inside the transaction is the only one at -1: Postgres checks it at commit
    (here at once, with the deferred check made immediate)."""
    assert api.connection is not None
    await api.connection.execute(text("SET CONSTRAINTS quarter_closes_counted_at_commit IMMEDIATE"))
    insert = (
        "INSERT INTO quarter_closes (quarter, time_zone, cutoff, closed_at, closed_by, statements) "
        "VALUES ('2031-Q1', 'UTC', now(), now(), 'x', -1)"
    )
    assert "without its statement count" in await _refused(api, insert)


async def test_a_terms_version_only_takes_new_skus(api: Api, backend: str) -> None:
    """`POST /v1/program/skus` adds a SKU to every version lacking it; nothing else of a version changes."""
    assert api.connection is not None
    if backend == "postgres":

        def points(path: str, value: str) -> str:
            return f"terms = jsonb_set(terms::jsonb, '{{points_per_sku,{path}}}', '{value}')::json"

        removed = "terms = (terms::jsonb #- '{points_per_sku,desktop}')::json"
        other = "terms = jsonb_set(terms::jsonb, '{hold_days}', '1')::json"
        # Containment alone would take these: a level appended, the levels reordered.
        extra_level = (
            "terms = jsonb_set(terms::jsonb, '{levels}', (terms::jsonb -> 'levels') || "
            """'[{"level": "gold", "min_points": 1, "rate_bp": 1}]'::jsonb)::json"""
        )
        reordered = (
            "terms = jsonb_set(terms::jsonb, '{levels}', "
            "(SELECT jsonb_agg(l ORDER BY n DESC) FROM jsonb_array_elements(terms::jsonb -> 'levels') "
            "WITH ORDINALITY AS e(l, n)))::json"
        )
    else:

        def points(path: str, value: str) -> str:
            return f"terms = json_set(terms, '$.points_per_sku.\"{path}\"', {value})"

        removed = "terms = json_remove(terms, '$.points_per_sku.desktop')"
        other = "terms = json_set(terms, '$.hold_days', 1)"
        extra_level = """terms = json_insert(terms, '$.levels[#]', json('{"level": "gold", "min_points": 1}'))"""
        reordered = "terms = json_set(terms, '$.levels[0]', json_extract(terms, '$.levels[1]'))"
    for change in (
        points("desktop", "97"),
        removed,
        other,
        extra_level,
        reordered,
        "effective_from = '2031-01-01 00:00:00+00:00'",
        "published_by = 'someone else'",
        "version = version + 100",
    ):
        assert "new SKUs" in await _refused(api, f"UPDATE program_terms_versions SET {change}")
    assert "new SKUs" in await _refused(api, "DELETE FROM program_terms_versions")
    if backend == "postgres":
        assert "new SKUs" in await _refused(api, "TRUNCATE program_terms_versions CASCADE")
    added = await api.client.post("/v1/program/skus", json={"sku": "cloud-ultra", "points": 9}, headers=api.admin)
    assert added.status_code == 201, added.text
    taken = await api.connection.execute(text(f"UPDATE program_terms_versions SET {points('web-lite', '3')}"))
    assert taken.rowcount > 0  # type: ignore[attr-defined]
