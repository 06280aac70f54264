"""Domain events (the outbox), worker leases and scheduled jobs; store events wait for the applier.

Revision ID: c4e2a7d91f06
Revises: b7e1d3a9c512
Create Date: 2026-11-30 19:41:01.242596
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = 'c4e2a7d91f06'
down_revision: str | None = 'b7e1d3a9c512'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('domain_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('partner_id', sa.Uuid(), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('refs', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domain_events'))
    )
    with op.batch_alter_table('domain_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_domain_events_partner_id_id'), ['partner_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_domain_events_type_subject'), ['type', 'subject'], unique=False)

    op.create_table('scheduled_jobs',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('next_run_at', app.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_started_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_outcome', sa.String(length=16), nullable=True),
    sa.Column('last_counts', sa.JSON(), nullable=False),
    sa.Column('last_error', sa.String(length=2000), nullable=True),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduled_jobs'))
    )
    op.create_table('worker_leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=100), nullable=True),
    sa.Column('expires_at', app.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_worker_leases'))
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failures', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_webhook_events_status_id'), ['status', 'id'], unique=False)



    with op.batch_alter_table('level_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('terms_version', sa.Integer(), nullable=True))
        batch_op.alter_column('points_entry_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True)


def downgrade() -> None:
    # Level changes caused by terms have no entry to point to: they go with the column.
    op.execute("DELETE FROM level_changes WHERE points_entry_id IS NULL")
    with op.batch_alter_table('level_changes', schema=None) as batch_op:
        batch_op.alter_column('points_entry_id', existing_type=sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False)
        batch_op.drop_column('terms_version')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_events_status_id'))
        batch_op.drop_column('failures')

    op.drop_table('worker_leases')
    op.drop_table('scheduled_jobs')
    with op.batch_alter_table('domain_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_domain_events_type_subject'))
        batch_op.drop_index(batch_op.f('ix_domain_events_partner_id_id'))

    op.drop_table('domain_events')
