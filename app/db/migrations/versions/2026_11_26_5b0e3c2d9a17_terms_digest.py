"""Terms digest: a SHA-256 of each version's terms, so a process parses a version's JSON once.

Revision ID: 5b0e3c2d9a17
Revises: 311f4650db4a
Create Date: 2026-11-26 09:35:00
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b0e3c2d9a17"
down_revision: str | None = "311f4650db4a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _digest(terms: object) -> str:
    # Frozen copy of app.domain.terms.digest at the time of this migration.
    return hashlib.sha256(json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("program_terms_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
    versions = sa.table(
        "program_terms_versions",
        sa.column("version", sa.Integer()),
        sa.column("terms", sa.JSON()),
        sa.column("digest", sa.String()),
    )
    bind = op.get_bind()
    for version, terms in bind.execute(sa.select(versions.c.version, versions.c.terms)).all():
        bind.execute(versions.update().where(versions.c.version == version).values(digest=_digest(terms)))
    with op.batch_alter_table("program_terms_versions", schema=None) as batch_op:
        batch_op.alter_column("digest", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("program_terms_versions", schema=None) as batch_op:
        batch_op.drop_column("digest")
