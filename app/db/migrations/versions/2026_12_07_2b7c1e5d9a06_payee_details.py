"""Payee details and the self-billing agreement.

- `payee_details`: each version of a partner's payee details (legal name, address, country, IBAN and
  BIC encrypted with PARTNERS_SECRETS_KEY, VAT id and standing), with when its bank details last changed
  and until when that holds its payouts. Append-only: a change adds a version.
- `self_billing_versions` and `self_billing_acceptances`: the agreement's published versions and the
  partners' acceptances of them, the acceptances append-only like the partner agreement's.

Expand-only: new tables the build before it never reads, and triggers on them alone.

Revision ID: 2b7c1e5d9a06
Revises: 1a9f1b2c3d05
Create Date: 2026-12-07 14:33:34.808390
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = '2b7c1e5d9a06'
down_revision: str | None = '1a9f1b2c3d05'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
compatible_with: str = "1a9d0f3a4b04"

APPEND_ONLY = ("payee_details", "self_billing_acceptances")


def upgrade() -> None:
    op.create_table('self_billing_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.String(length=50), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('published_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_self_billing_versions')),
    sa.UniqueConstraint('version', name=op.f('uq_self_billing_versions_version'))
    )
    with op.batch_alter_table('self_billing_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_self_billing_versions_published_at'), ['published_at'], unique=False)

    op.create_table('payee_details',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('legal_name', sa.String(length=200), nullable=False),
    sa.Column('address_line1', sa.String(length=200), nullable=False),
    sa.Column('address_line2', sa.String(length=200), nullable=True),
    sa.Column('postal_code', sa.String(length=100), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('iban', sa.Text(), nullable=False),
    sa.Column('bic', sa.Text(), nullable=False),
    sa.Column('iban_masked', sa.String(length=16), nullable=False),
    sa.Column('vat_id', sa.String(length=64), nullable=True),
    sa.Column('vat_registered', sa.Boolean(), nullable=False),
    sa.Column('recorded_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=100), nullable=False),
    sa.Column('bank_changed_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payouts_held_until', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_payee_details_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payee_details'))
    )
    with op.batch_alter_table('payee_details', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payee_details_partner_id_recorded_at_id'), ['partner_id', 'recorded_at', 'id'], unique=False)

    op.create_table('self_billing_acceptances',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('version_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('accepted_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_self_billing_acceptances_partner_id_partners')),
    sa.ForeignKeyConstraint(['version_id'], ['self_billing_versions.id'], name=op.f('fk_self_billing_acceptances_version_id_self_billing_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_self_billing_acceptances')),
    sa.UniqueConstraint('partner_id', 'version_id', name=op.f('uq_self_billing_acceptances_partner_id_version_id'))
    )
    with op.batch_alter_table('self_billing_acceptances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_self_billing_acceptances_partner_id'), ['partner_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
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
    else:
        for table in APPEND_ONLY:
            for operation in ("update", "delete"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{operation} BEFORE {operation.upper()} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{operation.upper()} on {table} refused: {table} is append-only'); END"
                )


def downgrade() -> None:
    # Dropping a table drops its triggers.
    with op.batch_alter_table('self_billing_acceptances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_self_billing_acceptances_partner_id'))

    op.drop_table('self_billing_acceptances')
    with op.batch_alter_table('payee_details', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payee_details_partner_id_recorded_at_id'))

    op.drop_table('payee_details')
    with op.batch_alter_table('self_billing_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_self_billing_versions_published_at'))

    op.drop_table('self_billing_versions')
