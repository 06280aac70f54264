"""Directory order stored: partners.level_rank and a partial index in the directory's order.

Revision ID: 9c4d1e7f2b38
Revises: 5b0e3c2d9a17
Create Date: 2026-11-26 10:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c4d1e7f2b38"
down_revision: str | None = "5b0e3c2d9a17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LISTED = "status = 'active' AND listed"


def upgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("level_rank", sa.SmallInteger(), nullable=False, server_default="3"))
    op.execute(
        "UPDATE partners SET level_rank = (SELECT CASE b.level WHEN 'platinum' THEN 0 WHEN 'gold' THEN 1 "
        "WHEN 'silver' THEN 2 ELSE 3 END FROM partner_balances b WHERE b.partner_id = partners.id) "
        "WHERE EXISTS (SELECT 1 FROM partner_balances b WHERE b.partner_id = partners.id)"
    )
    op.create_index(
        "ix_partners_directory",
        "partners",
        ["level_rank", sa.text("lower(company)"), "id"],
        unique=False,
        postgresql_where=sa.text(_LISTED),
        sqlite_where=sa.text(_LISTED),
    )


def downgrade() -> None:
    op.drop_index("ix_partners_directory", table_name="partners")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("level_rank")
