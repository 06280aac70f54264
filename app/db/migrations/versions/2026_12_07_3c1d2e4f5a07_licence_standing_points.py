"""Each licence's standing points, kept by the database as entries are written (issue 25).

- `licences.standing_points`: the sum of the licence's points entries (credits, revocations on lapse,
  refund reversals, restorations on renewal), kept by triggers in the transaction that writes an entry
  (and computed when a licence row is inserted after entries naming it), backfilled from the ledger.
  Points at risk (a partner's active licences ending within the window) are then read from the
  licences' (partner_id, status, term_end) index, not summed over ledger entries on every status read.

Expand-only: a nullable-free column with a default and triggers that keep it; the build before it
neither reads nor writes it, and its entries keep it right through the triggers.

Revision ID: 3c1d2e4f5a07
Revises: f38d9aa29d7d
Create Date: 2026-12-07 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3c1d2e4f5a07'
down_revision: str | None = 'f38d9aa29d7d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The oldest application revision that still works against the schema after this migration (see
# "Deploys and migrations" in README.md): itself for a contract change (a column dropped, renamed or
# made required, data rewritten for new rules); for an expand-only one (a table, a nullable column,
# an index), the `compatible_with` of the migration before it.
compatible_with: str = 'c4b4f5dfb2b4'

_SUM = "COALESCE((SELECT SUM(p.points) FROM points_entries p WHERE p.licence_id = {licence}), 0)"


def upgrade() -> None:
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('standing_points', sa.BigInteger(), server_default='0', nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION partners_licence_standing_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                NEW.standing_points := {_SUM.format(licence="NEW.licence_id")};
                RETURN NEW;
            END;
            $$
            """
        )
        op.execute(
            """
            CREATE FUNCTION partners_licence_standing_entry() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE licences SET standing_points = standing_points + NEW.points
                WHERE licence_id = NEW.licence_id;
                RETURN NULL;
            END;
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER licences_standing_points BEFORE INSERT ON licences "
            "FOR EACH ROW EXECUTE FUNCTION partners_licence_standing_insert()"
        )
        op.execute(
            "CREATE TRIGGER points_entries_licence_standing AFTER INSERT ON points_entries "
            "FOR EACH ROW WHEN (NEW.licence_id IS NOT NULL AND NEW.points <> 0) "
            "EXECUTE FUNCTION partners_licence_standing_entry()"
        )
    else:
        op.execute(
            "CREATE TRIGGER licences_standing_points AFTER INSERT ON licences FOR EACH ROW BEGIN "
            f"UPDATE licences SET standing_points = {_SUM.format(licence='NEW.licence_id')} "
            "WHERE licence_id = NEW.licence_id; END"
        )
        op.execute(
            "CREATE TRIGGER points_entries_licence_standing AFTER INSERT ON points_entries FOR EACH ROW "
            "WHEN NEW.licence_id IS NOT NULL AND NEW.points <> 0 BEGIN "
            "UPDATE licences SET standing_points = standing_points + NEW.points "
            "WHERE licence_id = NEW.licence_id; END"
        )
    op.execute(f"UPDATE licences SET standing_points = {_SUM.format(licence='licences.licence_id')}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS points_entries_licence_standing ON points_entries")
        op.execute("DROP TRIGGER IF EXISTS licences_standing_points ON licences")
        op.execute("DROP FUNCTION IF EXISTS partners_licence_standing_entry()")
        op.execute("DROP FUNCTION IF EXISTS partners_licence_standing_insert()")
    else:
        op.execute("DROP TRIGGER IF EXISTS points_entries_licence_standing")
        op.execute("DROP TRIGGER IF EXISTS licences_standing_points")
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.drop_column('standing_points')
