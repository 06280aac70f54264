"""The policy's remaining limits: tax on order lines (R23); partners' VAT ids and one list of flagged
orders (R22), filled with the discount mismatches and not-for-resale resales recorded so far; the
purpose and acknowledgement of not-for-resale licences (R17); the directory's review queue, published
text and admin hiding (R18), where today's descriptions count as approved and company names that
misspell the brand (R20) wait for their partner to change them.

Lines recorded before `tax_amount` existed count as tax 0 (R23). Their orders' content hashes need
no rewrite: the digest leaves a zero tax out, so an old order delivered again with `"tax_amount": 0`
is still a duplicate.

Revision ID: 2d935f7b135a
Revises: 067c8b39c459
Create Date: 2026-11-30 20:00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = '2d935f7b135a'
down_revision: str | None = '067c8b39c459'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LISTED = "status = 'active' AND listed"
_BRAND_ANY_CASE = re.compile(r"(?<![A-Za-z])[Qq][Aa][Ll][Yy][Pp][Tt][Uu][Ss]")
"""R20's check as of this revision (app/domain/rules/brand.py), frozen here."""


def upgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_amount', sa.BigInteger(), nullable=False, server_default='0'))

    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vat_id', sa.String(length=64), nullable=True))

    # SQLite's batch mode may copy the table, and cannot carry an expression index across.
    op.drop_index('ix_partners_directory', table_name='partners')
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_description', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('published_services', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('hidden_at', app.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('hidden_reason', sa.String(length=1000), nullable=True))
    _directory_index()
    # R18: what the directory shows today counts as approved.
    op.execute("UPDATE partners SET published_description = description, published_services = services")

    op.create_table('directory_reviews',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=True),
    sa.Column('services', sa.JSON(), nullable=False),
    sa.Column('company', sa.String(length=200), nullable=True),
    sa.Column('submitted_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('decided_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_directory_reviews_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_directory_reviews'))
    )
    with op.batch_alter_table('directory_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_directory_reviews_partner_id_id'), ['partner_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_directory_reviews_status_id'), ['status', 'id'], unique=False)
    # R20: names registered before the check stay until changed, in the review queue meanwhile.
    bind = op.get_bind()
    partners = sa.table(
        'partners',
        sa.column('id', sa.Uuid()),
        sa.column('company', sa.String()),
        sa.column('updated_at', app.db.types.UTCDateTime(timezone=True)),
    )
    reviews = sa.table(
        'directory_reviews',
        sa.column('partner_id', sa.Uuid()),
        sa.column('kind', sa.String()),
        sa.column('services', sa.JSON()),
        sa.column('company', sa.String()),
        sa.column('submitted_at', app.db.types.UTCDateTime(timezone=True)),
        sa.column('status', sa.String()),
    )
    found = [
        {'partner_id': pid, 'kind': 'company_name', 'services': [], 'company': company, 'submitted_at': at,
         'status': 'pending'}
        for pid, company, at in bind.execute(
            sa.select(partners.c.id, partners.c.company, partners.c.updated_at)
            .where(sa.func.lower(partners.c.company).like('%qalyptus%'))
            .order_by(partners.c.updated_at, partners.c.id)
        ).all()
        if any(m.group(0) != 'Qalyptus' for m in _BRAND_ANY_CASE.finditer(company))
    ]
    if found:
        bind.execute(reviews.insert(), found)

    # R17: licences issued before a purpose was asked keep none.
    with op.batch_alter_table('nfr_licences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_at', app.db.types.UTCDateTime(timezone=True), nullable=True))

    op.create_table('order_flags',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.String(length=255), nullable=False),
    sa.Column('order_line_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('partner_id', sa.Uuid(), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('recorded_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.Column('resolution', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_order_flags_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_flags'))
    )
    with op.batch_alter_table('order_flags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_flags_kind_id'), ['kind', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_flags_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_order_flags_partner_id'), ['partner_id'], unique=False)
    # What admins reviewed in two places so far, in the one list, oldest first.
    op.execute(
        """
        INSERT INTO order_flags (kind, order_id, order_line_id, partner_id, detail, recorded_at)
        SELECT kind, order_id, order_line_id, partner_id, detail, recorded_at FROM (
            SELECT 'discount_mismatch' AS kind, order_id, order_line_id, partner_id,
                   'expected a discount of ' || CAST(expected_amount AS VARCHAR) || ' ('
                   || CAST(expected_rate_bp AS VARCHAR) || ' bp, ' || reason || '), the store applied '
                   || CAST(reported_amount AS VARCHAR) AS detail,
                   recorded_at
            FROM discount_mismatches
            UNION ALL
            SELECT 'nfr_resale', order_id, NULL, partner_id,
                   'not-for-resale licence ' || licence_id || ' sold', recorded_at
            FROM nfr_violations WHERE source = 'order' AND order_id IS NOT NULL
        ) AS found
        ORDER BY recorded_at
        """
    )


def downgrade() -> None:
    with op.batch_alter_table('nfr_licences', schema=None) as batch_op:
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('purpose')

    with op.batch_alter_table('order_flags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_flags_partner_id'))
        batch_op.drop_index(batch_op.f('ix_order_flags_order_id'))
        batch_op.drop_index(batch_op.f('ix_order_flags_kind_id'))

    op.drop_table('order_flags')

    with op.batch_alter_table('directory_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directory_reviews_status_id'))
        batch_op.drop_index(batch_op.f('ix_directory_reviews_partner_id_id'))
    op.drop_table('directory_reviews')

    # SQLite's batch mode copies the table and cannot carry an expression index across: drop the
    # directory index first and make it again afterwards.
    op.drop_index('ix_partners_directory', table_name='partners')
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.drop_column('hidden_reason')
        batch_op.drop_column('hidden_at')
        batch_op.drop_column('published_services')
        batch_op.drop_column('published_description')
        batch_op.drop_column('vat_id')
    _directory_index()

    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_column('tax_amount')


def _directory_index() -> None:
    op.create_index(
        'ix_partners_directory',
        'partners',
        ['level_rank', sa.text('lower(company)'), 'id'],
        unique=False,
        postgresql_where=sa.text(_LISTED),
        sqlite_where=sa.text(_LISTED),
    )
