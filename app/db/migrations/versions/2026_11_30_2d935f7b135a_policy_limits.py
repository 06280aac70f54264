"""The policy's remaining limits: tax on order lines (R23), ...

Lines recorded before `tax_amount` existed count as tax 0 (R23). Their orders' content hashes need
no rewrite: the digest leaves a zero tax out, so an old order delivered again with `"tax_amount": 0`
is still a duplicate.

Revision ID: 2d935f7b135a
Revises: c4e2a7d91f06
Create Date: 2026-11-30 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '2d935f7b135a'
down_revision: str | None = 'c4e2a7d91f06'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_amount', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_column('tax_amount')
