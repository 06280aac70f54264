"""Directory search columns: partners.search_text and region_text, trigram-indexed on Postgres.

Revision ID: b7e1d3a9c512
Revises: a3f8b2c6d401
Create Date: 2026-11-26 10:05:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "b7e1d3a9c512"
down_revision: str | None = "a3f8b2c6d401"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_LISTED = "status = 'active' AND listed"


def _text(*parts: Any) -> str:
    # Frozen copy of app.db.tables.directory_text at the time of this migration.
    lines: list[str] = []
    for part in parts:
        if isinstance(part, list):
            lines.extend(str(p) for p in part)
        elif part:
            lines.append(part)
    return "\n".join(lines).lower()


def upgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("region_text", sa.Text(), nullable=False, server_default=""))
    partners = sa.table(
        "partners",
        sa.column("id", sa.Uuid()),
        sa.column("company", sa.String()),
        sa.column("description", sa.String()),
        sa.column("services", sa.JSON()),
        sa.column("region", sa.String()),
        sa.column("regions_served", sa.JSON()),
        sa.column("search_text", sa.Text()),
        sa.column("region_text", sa.Text()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(partners.c.id, partners.c.company, partners.c.description, partners.c.services,
                  partners.c.region, partners.c.regions_served)
    ).all()
    for pid, company, description, services, region, served in rows:
        bind.execute(
            partners.update()
            .where(partners.c.id == pid)
            .values(search_text=_text(company, description, services or []), region_text=_text(region, served or []))
        )
    if bind.dialect.name == "postgresql":
        available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first()
        installed = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first() is not None
        if available and not installed:
            # Needs the right to create extensions; without it the searches scan, as on SQLite.
            savepoint = bind.begin_nested()
            try:
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
                savepoint.commit()
                installed = True
            except sa.exc.DBAPIError:
                savepoint.rollback()
        if installed:
            op.execute("CREATE INDEX ix_partners_search_text_trgm ON partners USING gin (search_text gin_trgm_ops)")
            op.execute("CREATE INDEX ix_partners_region_text_trgm ON partners USING gin (region_text gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_partners_region_text_trgm")
    op.execute("DROP INDEX IF EXISTS ix_partners_search_text_trgm")
    # SQLite's batch mode copies the table and cannot carry an expression index across: drop the
    # directory index first and make it again afterwards.
    op.drop_index("ix_partners_directory", table_name="partners")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("region_text")
        batch_op.drop_column("search_text")
    op.create_index(
        "ix_partners_directory",
        "partners",
        ["level_rank", sa.text("lower(company)"), "id"],
        unique=False,
        postgresql_where=sa.text(_LISTED),
        sqlite_where=sa.text(_LISTED),
    )
