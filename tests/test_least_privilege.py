"""The service runs as the least-privilege role the README describes, with the README's GRANTs."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.main import create_app
from tests.conftest import Api, MovableClock, _first_admin_key, make_settings
from tests.program import Customer, Program, line

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_grants(role: str, database: str) -> list[str]:
    """The README's GRANT statements, for this role and database."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [grants] = [b for b in blocks if "GRANT" in b]
    grants = re.sub(r"\bpartners_app\b", role, grants)
    grants = re.sub(r"\bDATABASE partners\b", f'DATABASE "{database}"', grants)
    return [s.strip() for s in grants.split(";") if s.strip()]


@pytest.mark.parametrize("backend", ["postgres"])
async def test_webhooks_quarter_close_and_replay_run_as_the_least_privilege_role(
    backend: str, committing_database_url: str, clock: MovableClock
) -> None:
    database = committing_database_url.rsplit("/", 1)[1]
    owner_dsn = committing_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    # Roles are cluster-wide: a name of this run's own, dropped at the end.
    role = f"partners_app_{uuid.uuid4().hex[:12]}"
    owner = await asyncpg.connect(owner_dsn)
    try:
        await owner.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role} LOGIN; END IF; END $$"
        )
        for statement in readme_grants(role, database):
            await owner.execute(statement)
        app_url = committing_database_url.replace("postgres@", f"{role}@", 1)
        assert role in app_url
        application = create_app(make_settings(app_url), clock=clock)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                key = await _first_admin_key(application.state.session_factory, clock.now())
                api = Api(client=client, connection=None, clock=clock, app=application, admin_key=key)
                await _program_as_the_role(api)
        await _the_role_cannot(app_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    finally:
        await owner.execute(f"DROP OWNED BY {role}")
        await owner.execute(f"DROP ROLE IF EXISTS {role}")
        await owner.close()


async def _program_as_the_role(api: Api) -> None:
    program = Program(api)
    p = await program.partner("2026-01-01T09:00:00Z")
    c = Customer.new()
    assert (await program.register(p, c, at="2026-01-02T09:00:00Z")).status_code == 201
    await program.order(c, [line("desktop", 2, 96000)], placed_at="2026-02-01T10:00:00Z")
    parked = await program.order(c, [line("cloud-premium", 1, 50000)], placed_at="2026-02-02T10:00:00Z", expect=202)
    added = await api.client.post("/v1/program/skus", json={"sku": "cloud-premium", "points": 6}, headers=api.admin)
    assert added.status_code == 201, added.text
    replayed = await api.client.post(f"/v1/webhook-events/{parked['receipt']['event_id']}/replay", headers=api.admin)
    assert replayed.status_code == 200 and replayed.json()["status"] == "applied", replayed.text
    program.at("2026-04-02T00:00:00Z")
    closed = await api.client.post("/v1/quarters/2026-Q1/close", headers=api.admin)
    assert closed.status_code == 200, closed.text
    [statement] = closed.json()["statements"]
    assert statement["payable_amount"] == 19200 + 10000
    approved = await api.client.post(f"/v1/statements/{statement['id']}/approve", headers=api.admin)
    assert approved.status_code == 200, approved.text
    paid = await api.client.post(
        f"/v1/statements/{statement['id']}/mark-paid",
        json={"payment_reference": "PAY-1"},
        headers={**api.admin, "Idempotency-Key": "pay-1"},
    )
    assert paid.status_code == 200, paid.text
    assert await program.total_points(p) == 2 + 6
    malformed = b'{"type": "order.paid", "data": {"order_id": 7}}'
    rejected = await api.client.post("/v1/webhooks/store", content=malformed, headers=api.signed("msg_lp_1", malformed))
    assert rejected.status_code == 422, rejected.text


async def _the_role_cannot(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in (
            "UPDATE money_entries SET amount = amount + 1",
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "DELETE FROM statements",
            "CREATE TABLE intruder (id int)",
            "ALTER TABLE partners ADD COLUMN intruder int",
            "DROP TRIGGER money_entries_no_update ON money_entries",
        ):
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.execute(statement)
        # What the role may write in general, the triggers refuse for history and closed periods.
        closed = "WHERE quarter = '2026-Q1'"
        for statement in (
            f"UPDATE quarter_closes SET quarter = '2025-Q4' {closed}",
            f"UPDATE quarter_closes SET statements = statements + 1 {closed}",
            f"UPDATE statements SET payable_amount = payable_amount + 1 {closed}",
            f"UPDATE statements SET status = 'approved' {closed}",
            "INSERT INTO statements (id, partner_id, quarter, currency, status, opening_balance, lines_total, "
            "closing_balance, payable_amount, payout_date, created_at) SELECT gen_random_uuid(), partner_id, "
            f"quarter, 'USD', 'draft', 0, 500, 500, 500, payout_date, created_at FROM statements {closed}",
            "INSERT INTO statement_lines (statement_id, money_entry_id, amount) "
            "SELECT statement_id, money_entry_id, 500 FROM statement_lines",
            "UPDATE rejected_webhook_events SET body = '{}'",
            "UPDATE partner_status_changes SET reason = 'rewritten'",
            "UPDATE agreement_acceptances SET accepted_at = accepted_at",
            "UPDATE program_terms_versions SET published_by = 'someone else'",
            "UPDATE program_terms_versions SET terms = jsonb_set(terms::jsonb, '{points_per_sku,desktop}', '40')::json",
            "UPDATE webhook_events SET body = '{}'",
        ):
            async with conn.transaction():  # each in its own transaction: a refusal aborts it
                with pytest.raises(asyncpg.exceptions.RestrictViolationError):
                    await conn.execute(statement)
    finally:
        await conn.close()
