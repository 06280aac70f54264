"""Store events keep the span context of the request that accepted them (a W3C `traceparent`, when
tracing is on), so the worker's span applying an event links to the intake's trace.

Revision ID: e3b9a4c7d120
Revises: 5e81c0a9d3b7
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e3b9a4c7d120'
down_revision: str | None = '5e81c0a9d3b7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traceparent', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('traceparent')
