"""Invoice documents and credit notes.

- `invoice_documents`: the PDF/A-3 (Factur-X) of each invoice, rendered by a worker after issue; one row
  per invoice, made pending for the invoices issued before this migration. Its PDF, once written, is
  never changed, and a row is never deleted (triggers).
- `invoices`: `kind` (`invoice`, or `credit_note` crediting `credits_id` in full, with its `reason`); a
  statement may now have a credited invoice and its replacement, so `statement_id` is no longer unique.
  Invoices are immutable: the database refuses to change or delete one (triggers).

A contract change: the build before it takes a statement's credited invoice for its current one.

Revision ID: c4b4f5dfb2b4
Revises: c39ce7cff739
Create Date: 2026-12-07 17:26:14.929485
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = 'c4b4f5dfb2b4'
down_revision: str | None = 'c39ce7cff739'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The oldest application revision that still works against the schema after this migration (see
# "Deploys and migrations" in README.md): itself for a contract change (a column dropped, renamed or
# made required, data rewritten for new rules); for an expand-only one (a table, a nullable column,
# an index), the `compatible_with` of the migration before it.
compatible_with: str = 'c4b4f5dfb2b4'


def upgrade() -> None:
    op.create_table('invoice_documents',
    sa.Column('invoice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.Uuid(), nullable=True),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('rendered_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('claimed_until', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_documents_invoice_id_invoices')),
    sa.ForeignKeyConstraint(['run_id'], ['payout_runs.id'], name=op.f('fk_invoice_documents_run_id_payout_runs')),
    sa.PrimaryKeyConstraint('invoice_id', name=op.f('pk_invoice_documents'))
    )
    with op.batch_alter_table('invoice_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_documents_run_id'), ['run_id'], unique=False)

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='invoice'))
        batch_op.add_column(sa.Column('credits_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.String(length=500), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_invoices_statement_id'), type_='unique')
        batch_op.create_index(batch_op.f('ix_invoices_statement_id'), ['statement_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_credits_id'), ['credits_id'])
        batch_op.create_foreign_key(batch_op.f('fk_invoices_credits_id_invoices'), 'invoices', ['credits_id'], ['id'])

    op.execute(
        "INSERT INTO invoice_documents (invoice_id, run_id, attempts) "
        "SELECT i.id, (SELECT s.run_id FROM payout_run_statements s WHERE s.invoice_id = i.id "
        "ORDER BY s.id LIMIT 1), 0 FROM invoices i"
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for operation in ("update", "delete"):
        if postgres:
            op.execute(
                f"CREATE TRIGGER invoices_no_{operation} BEFORE {operation.upper()} ON invoices "
                "FOR EACH ROW EXECUTE FUNCTION partners_refuse('an issued invoice is immutable: correct it by a credit note')"
            )
        else:
            op.execute(
                f"CREATE TRIGGER invoices_no_{operation} BEFORE {operation.upper()} ON invoices BEGIN "
                f"SELECT RAISE(ABORT, '{operation.upper()} on invoices refused: an issued invoice is immutable'); END"
            )
    if postgres:
        op.execute(
            "CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON invoices "
            "FOR EACH STATEMENT EXECUTE FUNCTION partners_refuse('an issued invoice is immutable')"
        )
        op.execute(
            "CREATE TRIGGER invoice_documents_no_update BEFORE UPDATE ON invoice_documents FOR EACH ROW "
            "WHEN (OLD.pdf IS NOT NULL) EXECUTE FUNCTION partners_refuse('a rendered invoice document is immutable')"
        )
        for operation, scope in (("delete", "ROW"), ("truncate", "STATEMENT")):
            op.execute(
                f"CREATE TRIGGER invoice_documents_no_{operation} BEFORE {operation.upper()} ON invoice_documents "
                f"FOR EACH {scope} EXECUTE FUNCTION partners_refuse('invoice documents are kept')"
            )
    else:
        op.execute(
            "CREATE TRIGGER invoice_documents_no_update BEFORE UPDATE ON invoice_documents WHEN OLD.pdf IS NOT NULL "
            "BEGIN SELECT RAISE(ABORT, 'UPDATE on invoice_documents refused: a rendered document is immutable'); END"
        )
        op.execute(
            "CREATE TRIGGER invoice_documents_no_delete BEFORE DELETE ON invoice_documents "
            "BEGIN SELECT RAISE(ABORT, 'DELETE on invoice_documents refused: invoice documents are kept'); END"
        )


def downgrade() -> None:
    # Dropping a table drops its triggers; those of `invoices` go first (SQLite's batch mode copies it).
    for operation in ("update", "delete", "truncate"):
        if operation != "truncate" or op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS invoices_no_{operation}" + (" ON invoices" if op.get_bind().dialect.name == "postgresql" else ""))
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_invoices_credits_id_invoices'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_invoices_credits_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_invoices_statement_id'))
        batch_op.create_unique_constraint(batch_op.f('uq_invoices_statement_id'), ['statement_id'])
        batch_op.drop_column('reason')
        batch_op.drop_column('credits_id')
        batch_op.drop_column('kind')

    with op.batch_alter_table('invoice_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_documents_run_id'))

    op.drop_table('invoice_documents')
