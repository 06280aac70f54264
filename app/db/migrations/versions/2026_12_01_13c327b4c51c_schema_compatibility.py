"""Schema compatibility across deploys: each applied migration's oldest compatible application revision.

The migration run records every migration from here on (`app/db/compatibility.py`, called by
env.py); this one records those before it, each compatible only with itself (none declared more).
Expand-only: the build before it never reads the table, so it keeps that build's revision.

Revision ID: 13c327b4c51c
Revises: e3b9a4c7d120
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import app.db.types

revision: str = "13c327b4c51c"
down_revision: str | None = "e3b9a4c7d120"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
compatible_with: str = "e3b9a4c7d120"

EARLIER: list[tuple[str, str | None]] = [
    ("7c1e0f7cad11", None),
    ("886f409280c4", "7c1e0f7cad11"),
    ("f8df554b56e7", "886f409280c4"),
    ("6004af6c4c83", "f8df554b56e7"),
    ("431e18d688f3", "6004af6c4c83"),
    ("311f4650db4a", "431e18d688f3"),
    ("5b0e3c2d9a17", "311f4650db4a"),
    ("9c4d1e7f2b38", "5b0e3c2d9a17"),
    ("a3f8b2c6d401", "9c4d1e7f2b38"),
    ("b7e1d3a9c512", "a3f8b2c6d401"),
    ("c4e2a7d91f06", "b7e1d3a9c512"),
    ("067c8b39c459", "c4e2a7d91f06"),
    ("2d935f7b135a", "067c8b39c459"),
    ("5e81c0a9d3b7", "2d935f7b135a"),
    ("e3b9a4c7d120", "5e81c0a9d3b7"),
]


def upgrade() -> None:
    table = op.create_table(
        "schema_compatibility",
        sa.Column("revision", sa.String(length=32), nullable=False),
        sa.Column("oldest_compatible_revision", sa.String(length=32), nullable=False),
        sa.Column("down_revision", sa.String(length=200), nullable=True),
        sa.Column("applied_at", app.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_schema_compatibility")),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        table,
        [
            {"revision": rev, "oldest_compatible_revision": rev, "down_revision": down, "applied_at": now}
            for rev, down in EARLIER
        ],
    )


def downgrade() -> None:
    op.drop_table("schema_compatibility")
