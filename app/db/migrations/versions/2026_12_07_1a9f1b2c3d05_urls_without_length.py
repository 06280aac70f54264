"""Website and agreement URLs are stored with no length of their own.

The API takes a website or an agreement URL of at most 2083 characters as sent and stores it
normalised, which may be longer: percent-encoding writes a character of four UTF-8 bytes as twelve
characters, and an international host name becomes punycode. The columns that hold a normalised URL
(`partners.website` and `published_website`, `directory_reviews.website`, `agreement_versions.url`)
become `TEXT`, so a URL the API document allows is never refused for its stored length.

On Postgres `varchar(2083)` to `text` is binary-coercible: no table rewrite. SQLite never enforced the
length (both types have TEXT affinity), so only the declared type in its schema changes, in place, by
SQLite's documented procedure for changes that leave the stored rows as they are; rebuilding `partners`
would trip the foreign keys of every table that references it.

Expand-only: the build before it writes URLs of at most 2083 characters, which the wider columns take.
A downgrade fails on Postgres while a stored URL is longer than 2083 characters.

Revision ID: 1a9f1b2c3d05
Revises: 1a9d0f3a4b04
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1a9f1b2c3d05"
down_revision: str | None = "1a9d0f3a4b04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
compatible_with: str = "1a9d0f3a4b04"

COLUMNS = {
    "partners": ("website", "published_website"),
    "directory_reviews": ("website",),
    "agreement_versions": ("url",),
}
_BOUNDED = "VARCHAR(2083)"


def _sqlite_declare(table: str, columns: tuple[str, ...], old: str, new: str) -> None:
    """Change the declared type of `columns` in SQLite's stored CREATE TABLE of `table`."""
    bind = op.get_bind()
    sql = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": table}
    ).scalar_one()
    for column in columns:
        declaration = re.compile(rf'(?<![\w"])("?){column}\1\s+{re.escape(old)}(?=\s*[,)])', re.IGNORECASE)
        sql, found = declaration.subn(lambda m: f"{m.group(1)}{column}{m.group(1)} {new}", sql)
        if found != 1:
            raise RuntimeError(f"{table}.{column} is not declared {old} in SQLite's schema")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        bind.execute(
            sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :name"),
            {"sql": sql, "name": table},
        )
        bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")  # other connections reread it
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def _declare(old: sa.types.TypeEngine[str], new: sa.types.TypeEngine[str], old_sqlite: str, new_sqlite: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, columns in COLUMNS.items():
            _sqlite_declare(table, columns, old_sqlite, new_sqlite)
        problems = op.get_bind().exec_driver_sql("PRAGMA quick_check").scalars().all()
        if problems != ["ok"]:
            raise RuntimeError(f"SQLite's schema check failed: {problems}")
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, existing_type=old, type_=new, existing_nullable=True)


def upgrade() -> None:
    _declare(sa.String(length=2083), sa.Text(), _BOUNDED, "TEXT")


def downgrade() -> None:
    _declare(sa.Text(), sa.String(length=2083), "TEXT", _BOUNDED)
