"""Licences by (partner_id, status, term_end) instead of partner_id alone: points at risk at scale.

Revision ID: a3f8b2c6d401
Revises: 9c4d1e7f2b38
Create Date: 2026-11-26 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "a3f8b2c6d401"
down_revision: str | None = "9c4d1e7f2b38"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("licences", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_licences_partner_id_status_term_end"), ["partner_id", "status", "term_end"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_licences_partner_id"))


def downgrade() -> None:
    with op.batch_alter_table("licences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_licences_partner_id"), ["partner_id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_licences_partner_id_status_term_end"))
