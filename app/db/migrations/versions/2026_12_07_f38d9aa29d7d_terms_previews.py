"""Terms-change previews.

- `terms_previews`: a draft of the terms replayed over the program's history, its progress and its
  program-wide result; `terms_preview_partners`: its figures per partner. Expand-only: new tables that
  no earlier build reads.

Revision ID: f38d9aa29d7d
Revises: 05afa77dc93e
Create Date: 2026-12-07 20:57:00.403540
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = 'f38d9aa29d7d'
down_revision: str | None = '05afa77dc93e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The oldest application revision that still works against the schema after this migration (see
# "Deploys and migrations" in README.md): itself for a contract change (a column dropped, renamed or
# made required, data rewritten for new rules); for an expand-only one (a table, a nullable column,
# an index), the `compatible_with` of the migration before it.
compatible_with: str = 'c4b4f5dfb2b4'


def upgrade() -> None:
    op.create_table('terms_previews',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('draft', sa.JSON(), nullable=False),
    sa.Column('draft_digest', sa.String(length=64), nullable=False),
    sa.Column('effective_from', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('base_version', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.String(length=7), nullable=False),
    sa.Column('window_end', sa.String(length=7), nullable=False),
    sa.Column('orders_total', sa.Integer(), nullable=False),
    sa.Column('orders_done', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('claimed_until', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('published_version', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_terms_previews'))
    )
    with op.batch_alter_table('terms_previews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_terms_previews_draft_digest'), ['draft_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_terms_previews_status_created_at'), ['status', 'created_at'], unique=False)

    op.create_table('terms_preview_partners',
    sa.Column('preview_id', sa.Uuid(), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=False),
    sa.Column('impact_rank', sa.Integer(), nullable=False),
    sa.Column('company', sa.String(length=200), nullable=False),
    sa.Column('points_now', sa.BigInteger(), nullable=False),
    sa.Column('points_lapsing', sa.BigInteger(), nullable=False),
    sa.Column('points_recount', sa.BigInteger(), nullable=False),
    sa.Column('level_now', sa.String(length=16), nullable=False),
    sa.Column('level_current_terms', sa.String(length=16), nullable=False),
    sa.Column('level_draft', sa.String(length=16), nullable=False),
    sa.Column('level_recount', sa.String(length=16), nullable=False),
    sa.Column('discount_bp_now', sa.Integer(), nullable=False),
    sa.Column('discount_bp_draft', sa.Integer(), nullable=False),
    sa.Column('commission', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['preview_id'], ['terms_previews.id'], name=op.f('fk_terms_preview_partners_preview_id_terms_previews')),
    sa.PrimaryKeyConstraint('preview_id', 'partner_id', name=op.f('pk_terms_preview_partners'))
    )
    with op.batch_alter_table('terms_preview_partners', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_terms_preview_partners_preview_id_impact_rank'), ['preview_id', 'impact_rank'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('terms_preview_partners', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_terms_preview_partners_preview_id_impact_rank'))

    op.drop_table('terms_preview_partners')
    with op.batch_alter_table('terms_previews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_terms_previews_status_created_at'))
        batch_op.drop_index(batch_op.f('ix_terms_previews_draft_digest'))

    op.drop_table('terms_previews')
