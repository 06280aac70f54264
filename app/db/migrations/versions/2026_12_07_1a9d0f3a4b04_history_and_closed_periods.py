"""History and closed periods refused by the database itself, whoever connects.

- A closed quarter stays closed: `quarter_closes` rows are never deleted, and change once only, when
  the close that made the row records how many statements it made (`statements` goes from -1,
  "closing", to that count, every other column kept). While a close is at -1 (only inside the
  transaction that makes it: Postgres refuses to commit it so) it may add statements to its quarter;
  once it holds its count, no statement and no statement line is added to the quarter.
- A closed quarter's statement changes only along a transition listed in `statement_transitions`
  (from, to, and which fields the move sets: `approval` or `payment`), the one list the triggers
  read: a new state is rows in that table, not a new trigger. Staying in a state changes nothing.
- Rejected store events, partner status changes and agreement acceptances are append-only like the
  ledgers; a program terms version is never deleted and changes only by adding to its terms (a SKU
  it lacked, `POST /v1/program/skus`, and the defaults of settings newer than the version), every
  value it held kept; stored webhook events are never deleted (their status moves).

Contract: the previous build inserts a close as already counted (0) and so could no longer add its
statements; no older build may close a quarter once this has run.

Revision ID: 1a9d0f3a4b04
Revises: 1a9a0c0e1d01
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1a9d0f3a4b04"
down_revision: str | None = "1a9a0c0e1d01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
compatible_with: str = "1a9d0f3a4b04"

APPEND_ONLY = ("rejected_webhook_events", "partner_status_changes", "agreement_acceptances")
_TERMS_FIXED = ("version", "effective_from", "published_at", "published_by")
_TERMS_REASON = "a terms version is never deleted, and only takes new SKUs"
CLOSING = -1

TRANSITIONS = [
    {"from_status": "draft", "to_status": "approved", "sets": "approval"},
    {"from_status": "approved", "to_status": "paid", "sets": "payment"},
]
"""The moves of a closed quarter's statement when this ran; later migrations add rows."""

# Columns a closed quarter's statement keeps for ever.
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
_SETS = {"approval": ("approved_at", "approved_by"), "payment": ("paid_at", "payment_reference")}
_CLOSE_COLUMNS = ("quarter", "time_zone", "cutoff", "closed_at", "closed_by")
_IDENTIFIER_COLUMNS = ("id", "partner_id", "kind", "value", "declared_at")
_IDENTIFIER_REASON = "a declared identifier is kept for ever; it is only withdrawn, once"


def _withdrawn_once(distinct: str) -> str:
    """The one change a partner's declared identifier takes (R22): its withdrawal, once."""
    return (
        f"OLD.withdrawn_at IS NULL AND NEW.withdrawn_at IS NOT NULL AND {_same(_IDENTIFIER_COLUMNS, distinct)}"
    )


def _same(columns: Sequence[str], distinct: str) -> str:
    return " AND ".join(f"NOT (OLD.{c} {distinct} NEW.{c})" for c in columns)


def _allowed_update(distinct: str) -> str:
    """A listed move, setting only the fields the move sets; or no move, changing nothing."""
    unchanged = " AND ".join(f"({_same(fields, distinct)})" for fields in _SETS.values())
    listed = " AND ".join(
        f"(t.sets = '{name}' OR ({_same(fields, distinct)}))" for name, fields in _SETS.items()
    )
    return (
        f"({_same(_FIXED, distinct)}) AND ("
        f"(OLD.status = NEW.status AND {unchanged})"
        " OR EXISTS (SELECT 1 FROM statement_transitions t"
        f" WHERE t.from_status = OLD.status AND t.to_status = NEW.status AND {listed}))"
    )


def _closed(quarter: str) -> str:
    """The quarter's close holds its count: nothing is added to the quarter any more."""
    return f"EXISTS (SELECT 1 FROM quarter_closes c WHERE c.quarter = {quarter} AND c.statements <> {CLOSING})"


def _close_exists(quarter: str) -> str:
    return f"EXISTS (SELECT 1 FROM quarter_closes c WHERE c.quarter = {quarter})"


_LINE_CLOSED = (
    "EXISTS (SELECT 1 FROM statements s JOIN quarter_closes c ON c.quarter = s.quarter "
    f"WHERE s.id = NEW.statement_id AND c.statements <> {CLOSING})"
)


def _postgres_upgrade() -> None:
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
        "CREATE TRIGGER program_terms_versions_only_add_skus BEFORE UPDATE ON program_terms_versions FOR EACH ROW "
        f"WHEN (NOT ({_same(_TERMS_FIXED, 'IS DISTINCT FROM')} "
        # jsonb containment ignores the order and the count of an array's elements: the levels must
        # stay exactly as they were (SQLite's check below compares them place by place).
        "AND NEW.terms::jsonb @> OLD.terms::jsonb AND NEW.terms::jsonb -> 'levels' = OLD.terms::jsonb -> 'levels')) "
        f"EXECUTE FUNCTION partners_refuse('{_TERMS_REASON}')"
    )
    for table, reason in (
        ("program_terms_versions", _TERMS_REASON),
        ("webhook_events", "a stored webhook is kept for ever"),
        ("quarter_closes", "a closed quarter stays closed"),
        ("partner_identifiers", _IDENTIFIER_REASON),
    ):
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION partners_refuse('{reason}')"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION partners_refuse('{reason}')"
        )
    op.execute(
        "CREATE TRIGGER partner_identifiers_withdrawn_once BEFORE UPDATE ON partner_identifiers FOR EACH ROW "
        f"WHEN (NOT ({_withdrawn_once('IS DISTINCT FROM')})) "
        f"EXECUTE FUNCTION partners_refuse('{_IDENTIFIER_REASON}')"
    )
    op.execute(
        "CREATE TRIGGER statements_no_truncate BEFORE TRUNCATE ON statements "
        "FOR EACH STATEMENT EXECUTE FUNCTION partners_refuse('a closed quarter''s statements are kept')"
    )
    op.execute(
        "CREATE TRIGGER quarter_closes_counted_once BEFORE UPDATE ON quarter_closes FOR EACH ROW "
        f"WHEN (NOT (OLD.statements = {CLOSING} AND NEW.statements >= 0 "
        f"AND {_same(_CLOSE_COLUMNS, 'IS DISTINCT FROM')})) "
        "EXECUTE FUNCTION partners_refuse('a closed quarter only records its statement count, once')"
    )
    op.execute(
        f"""
        CREATE FUNCTION partners_close_counted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM quarter_closes c WHERE c.quarter = NEW.quarter AND c.statements = {CLOSING}) THEN
                RAISE EXCEPTION 'the close of % is committed without its statement count', NEW.quarter
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NULL;
        END;
        $$
        """
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER quarter_closes_counted_at_commit AFTER INSERT ON quarter_closes "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION partners_close_counted()"
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION partners_closed_statement() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                IF {_closed("NEW.quarter")} THEN
                    RAISE EXCEPTION 'INSERT of a statement into the closed quarter % refused', NEW.quarter
                        USING ERRCODE = 'restrict_violation';
                END IF;
                RETURN NEW;
            END IF;
            IF NOT {_close_exists("OLD.quarter")} AND (TG_OP = 'DELETE' OR NOT {_close_exists("NEW.quarter")}) THEN
                RETURN COALESCE(NEW, OLD);
            END IF;
            IF TG_OP = 'UPDATE' AND ({_allowed_update("IS DISTINCT FROM")}) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '% on a statement of the closed quarter % refused: only the moves statement_transitions lists',
                TG_OP, OLD.quarter USING ERRCODE = 'restrict_violation';
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER statements_closed_no_insert BEFORE INSERT ON statements "
        "FOR EACH ROW EXECUTE FUNCTION partners_closed_statement()"
    )
    op.execute(
        f"""
        CREATE FUNCTION partners_closed_statement_line() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF {_LINE_CLOSED} THEN
                RAISE EXCEPTION 'INSERT on statement_lines refused: its statement belongs to a closed quarter'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER statement_lines_closed_no_insert BEFORE INSERT ON statement_lines "
        "FOR EACH ROW EXECUTE FUNCTION partners_closed_statement_line()"
    )


def _sqlite_upgrade() -> None:
    def refusing_trigger(name: str, event: str, table: str, reason: str, when: str | None = None) -> None:
        condition = f" WHEN {when}" if when else ""
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {event} ON {table}{condition} "
            f"BEGIN SELECT RAISE(ABORT, '{event} on {table} refused: {reason}'); END"
        )

    for table in APPEND_ONLY:
        for operation in ("update", "delete"):
            refusing_trigger(f"{table}_no_{operation}", operation.upper(), table, f"{table} is append-only")
    refusing_trigger(
        "program_terms_versions_only_add_skus",
        "UPDATE",
        "program_terms_versions",
        _TERMS_REASON,
        f"NOT ({_same(_TERMS_FIXED, 'IS NOT')} "
        "AND NOT EXISTS (SELECT 1 FROM json_tree(OLD.terms) o WHERE o.type NOT IN ('object', 'array') "
        "AND json_extract(NEW.terms, o.fullkey) IS NOT o.atom) "
        "AND json_extract(NEW.terms, '$.levels') IS json_extract(OLD.terms, '$.levels'))",
    )
    refusing_trigger("program_terms_versions_no_delete", "DELETE", "program_terms_versions", _TERMS_REASON)
    refusing_trigger("webhook_events_no_delete", "DELETE", "webhook_events", "a stored webhook is kept for ever")
    refusing_trigger("quarter_closes_no_delete", "DELETE", "quarter_closes", "a closed quarter stays closed")
    refusing_trigger("partner_identifiers_no_delete", "DELETE", "partner_identifiers", _IDENTIFIER_REASON)
    refusing_trigger(
        "partner_identifiers_withdrawn_once",
        "UPDATE",
        "partner_identifiers",
        _IDENTIFIER_REASON,
        f"NOT ({_withdrawn_once('IS NOT')})",
    )
    refusing_trigger(
        "quarter_closes_counted_once",
        "UPDATE",
        "quarter_closes",
        "a closed quarter only records its statement count, once",
        f"NOT (OLD.statements = {CLOSING} AND NEW.statements >= 0 AND {_same(_CLOSE_COLUMNS, 'IS NOT')})",
    )
    op.execute("DROP TRIGGER IF EXISTS statements_closed_no_update")
    op.execute("DROP TRIGGER IF EXISTS statements_closed_no_delete")
    refusing_trigger(
        "statements_closed_no_insert",
        "INSERT",
        "statements",
        "its quarter is closed",
        _closed("NEW.quarter"),
    )
    refusing_trigger(
        "statements_closed_no_update",
        "UPDATE",
        "statements",
        "its quarter is closed; only the moves statement_transitions lists",
        f"({_close_exists('OLD.quarter')} OR {_close_exists('NEW.quarter')}) AND NOT ({_allowed_update('IS NOT')})",
    )
    refusing_trigger("statements_closed_no_delete", "DELETE", "statements", "its quarter is closed", _close_exists("OLD.quarter"))
    refusing_trigger(
        "statement_lines_closed_no_insert",
        "INSERT",
        "statement_lines",
        "its statement belongs to a closed quarter",
        _LINE_CLOSED,
    )


def upgrade() -> None:
    table = op.create_table(
        "statement_transitions",
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("sets", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("from_status", "to_status", name=op.f("pk_statement_transitions")),
    )
    op.bulk_insert(table, TRANSITIONS)
    if op.get_bind().dialect.name == "postgresql":
        _postgres_upgrade()
    else:
        _sqlite_upgrade()


# --- downgrade: the guards of 067c8b39c459 for statements, and nothing of the rest ----------------


def _legacy_allowed(distinct: str) -> str:
    fixed = _same(_FIXED, distinct)
    approval = _same(_SETS["approval"], distinct)
    payment = _same(_SETS["payment"], distinct)
    return (
        f"({fixed}) AND ("
        f"(OLD.status = 'draft' AND NEW.status = 'approved' AND {payment})"
        f" OR (OLD.status = 'approved' AND NEW.status = 'paid' AND {approval})"
        f" OR (OLD.status = NEW.status AND {approval} AND {payment}))"
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    names = [(f"{t}_no_{o}", t) for t in APPEND_ONLY for o in ("update", "delete", "truncate")]
    names += [
        (f"{t}_no_{o}", t)
        for t in ("program_terms_versions", "webhook_events", "quarter_closes", "partner_identifiers")
        for o in ("delete", "truncate")
    ]
    names.append(("partner_identifiers_withdrawn_once", "partner_identifiers"))
    names.append(("program_terms_versions_only_add_skus", "program_terms_versions"))
    names += [
        ("statements_no_truncate", "statements"),
        ("quarter_closes_counted_once", "quarter_closes"),
        ("quarter_closes_counted_at_commit", "quarter_closes"),
        ("statements_closed_no_insert", "statements"),
        ("statement_lines_closed_no_insert", "statement_lines"),
    ]
    for name, table in names:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if postgres else f"DROP TRIGGER IF EXISTS {name}")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS partners_close_counted()")
        op.execute("DROP FUNCTION IF EXISTS partners_closed_statement_line()")
        op.execute(
            """
            CREATE OR REPLACE FUNCTION partners_closed_statement() RETURNS trigger LANGUAGE plpgsql AS $$
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
            """.replace("ALLOWED", _legacy_allowed("IS DISTINCT FROM"))
        )
    else:
        closed = "EXISTS (SELECT 1 FROM quarter_closes WHERE quarter_closes.quarter = OLD.quarter)"
        op.execute("DROP TRIGGER IF EXISTS statements_closed_no_update")
        op.execute("DROP TRIGGER IF EXISTS statements_closed_no_delete")
        op.execute(
            f"CREATE TRIGGER statements_closed_no_update BEFORE UPDATE ON statements "
            f"WHEN {closed} AND NOT ({_legacy_allowed('IS NOT')}) "
            "BEGIN SELECT RAISE(ABORT, 'UPDATE on a statement of a closed quarter refused: only draft -> approved "
            "-> paid'); END"
        )
        op.execute(
            f"CREATE TRIGGER statements_closed_no_delete BEFORE DELETE ON statements WHEN {closed} "
            "BEGIN SELECT RAISE(ABORT, 'DELETE on a statement of a closed quarter refused'); END"
        )
    op.drop_table("statement_transitions")
