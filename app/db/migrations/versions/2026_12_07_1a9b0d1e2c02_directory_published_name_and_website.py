"""The directory shows the company name and website an admin last approved (R18).

`partners.published_company` and `published_website` hold what the directory shows: the registered
name and website, then the last ones an admin approved; `directory_reviews.website` carries a new
website to review with the name. Existing partners keep their current name and website as approved.
The directory index orders by the published name.

Expand-only: the build before it never reads the new columns, and a partner it registers during the
deploy has them null, which this build reads as "the registered name and website, unchanged since".

Revision ID: 1a9b0d1e2c02
Revises: 13c327b4c51c
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1a9b0d1e2c02"
down_revision: str | None = "13c327b4c51c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
compatible_with: str = "13c327b4c51c"

_LISTED = "status = 'active' AND listed"


def _directory_index(name_expression: str) -> None:
    op.create_index(
        "ix_partners_directory",
        "partners",
        ["level_rank", sa.text(name_expression), "id"],
        unique=False,
        postgresql_where=sa.text(_LISTED),
        sqlite_where=sa.text(_LISTED),
    )


def upgrade() -> None:
    # SQLite's batch mode may copy the table, and cannot carry an expression index across.
    op.drop_index("ix_partners_directory", table_name="partners")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_company", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("published_website", sa.String(length=2083), nullable=True))
    op.execute("UPDATE partners SET published_company = company, published_website = website")
    _directory_index("lower(coalesce(published_company, company))")
    with op.batch_alter_table("directory_reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("website", sa.String(length=2083), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("directory_reviews", schema=None) as batch_op:
        batch_op.drop_column("website")
    op.drop_index("ix_partners_directory", table_name="partners")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("published_website")
        batch_op.drop_column("published_company")
    _directory_index("lower(company)")
