"""Hardening: Idempotency-Key claims with a token and a lease; triggers that make the database refuse
what the program's rules forbid (edits of ledgers, statement lines, the audit log, a stored webhook's
raw body, and a closed quarter's statements beyond their approve and pay transitions).

SQLite drops a table's triggers when a batch migration rebuilds it: a later migration that rebuilds
one of these tables must create its triggers again (tests/test_triggers.py checks them at the head).

Revision ID: 067c8b39c459
Revises: c4e2a7d91f06
Create Date: 2026-11-30 19:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.types import UTCDateTime

revision: str = "067c8b39c459"
down_revision: str | None = "c4e2a7d91f06"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("points_entries", "money_entries", "statement_lines", "audit_events")

# Columns a closed quarter's statement keeps for ever; only status and the approval and payment
# fields move, and only draft -> approved -> paid.
_FIXED = (
    "id",
    "partner_id",
    "quarter",
    "currency",
    "opening_balance",
    "lines_total",
    "closing_balance",
    "payable_amount",
    "payout_date",
    "created_at",
)


def _same(columns: Sequence[str], distinct: str) -> str:
    return " AND ".join(f"NOT (OLD.{c} {distinct} NEW.{c})" for c in columns)


def _allowed_transition(distinct: str) -> str:
    fixed = _same(_FIXED, distinct)
    approval = _same(("approved_at", "approved_by"), distinct)
    payment = _same(("paid_at", "payment_reference"), distinct)
    return (
        f"({fixed}) AND ("
        f"(OLD.status = 'draft' AND NEW.status = 'approved' AND {payment})"
        f" OR (OLD.status = 'approved' AND NEW.status = 'paid' AND {approval})"
        f" OR (OLD.status = NEW.status AND {approval} AND {payment}))"
    )


_CLOSED = "EXISTS (SELECT 1 FROM quarter_closes WHERE quarter_closes.quarter = OLD.quarter)"


def _postgres_upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION partners_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% on % refused: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
                USING ERRCODE = 'restrict_violation';
        END;
        $$
        """
    )
    for table in APPEND_ONLY:
        for operation in ("update", "delete"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation} BEFORE {operation.upper()} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION partners_refuse('{table} is append-only')"
            )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION partners_refuse('{table} is append-only')"
        )
    op.execute(
        "CREATE TRIGGER webhook_events_raw_kept BEFORE UPDATE ON webhook_events FOR EACH ROW "
        "WHEN (OLD.body IS DISTINCT FROM NEW.body OR OLD.webhook_id IS DISTINCT FROM NEW.webhook_id) "
        "EXECUTE FUNCTION partners_refuse('a stored webhook keeps its raw body and webhook-id')"
    )
    op.execute(
        """
        CREATE FUNCTION partners_closed_statement() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM quarter_closes WHERE quarter_closes.quarter = OLD.quarter) THEN
                RETURN COALESCE(NEW, OLD);
            END IF;
            IF TG_OP = 'UPDATE' AND (ALLOWED) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '% on a statement of the closed quarter % refused: only draft -> approved -> paid',
                TG_OP, OLD.quarter USING ERRCODE = 'restrict_violation';
        END;
        $$
        """.replace("ALLOWED", _allowed_transition("IS DISTINCT FROM"))
    )
    for operation in ("update", "delete"):
        op.execute(
            f"CREATE TRIGGER statements_closed_no_{operation} BEFORE {operation.upper()} ON statements "
            "FOR EACH ROW EXECUTE FUNCTION partners_closed_statement()"
        )


def _sqlite_upgrade() -> None:
    for table in APPEND_ONLY:
        for operation in ("update", "delete"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation} BEFORE {operation.upper()} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{operation.upper()} on {table} refused: {table} is append-only'); END"
            )
    op.execute(
        "CREATE TRIGGER webhook_events_raw_kept BEFORE UPDATE ON webhook_events "
        "WHEN OLD.body IS NOT NEW.body OR OLD.webhook_id IS NOT NEW.webhook_id "
        "BEGIN SELECT RAISE(ABORT, 'UPDATE on webhook_events refused: a stored webhook keeps its raw body "
        "and webhook-id'); END"
    )
    op.execute(
        f"CREATE TRIGGER statements_closed_no_update BEFORE UPDATE ON statements "
        f"WHEN {_CLOSED} AND NOT ({_allowed_transition('IS NOT')}) "
        "BEGIN SELECT RAISE(ABORT, 'UPDATE on a statement of a closed quarter refused: only draft -> approved "
        "-> paid'); END"
    )
    op.execute(
        f"CREATE TRIGGER statements_closed_no_delete BEFORE DELETE ON statements WHEN {_CLOSED} "
        "BEGIN SELECT RAISE(ABORT, 'DELETE on a statement of a closed quarter refused'); END"
    )


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", UTCDateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        _postgres_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    names = [f"{t}_no_{o}" for t in APPEND_ONLY for o in ("update", "delete")]
    names += [f"{t}_no_truncate" for t in APPEND_ONLY] if postgres else []
    tables = {name: name.rsplit("_no_", 1)[0] for name in names}
    tables["webhook_events_raw_kept"] = "webhook_events"
    tables["statements_closed_no_update"] = tables["statements_closed_no_delete"] = "statements"
    for name, table in tables.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgres else f"DROP TRIGGER IF EXISTS {name}")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS partners_closed_statement()")
        op.execute("DROP FUNCTION IF EXISTS partners_refuse()")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claim_token")
