"""Alembic, driven from code: the CLI, the server's start and the tests all migrate through here."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.session import ensure_sqlite_directory
from app.db.tables import POSTGRES_ONLY_INDEXES

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision`. Runs its own event loop: call it from sync code."""
    ensure_sqlite_directory(database_url)
    with warnings.catch_warnings():
        # SQLite's batch rebuilds reflect the table and cannot read the expression index the migration
        # itself drops and recreates around them: a warning about nothing, on every fresh install.
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection", category=SAWarning)
        command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


@lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    async with engine.connect() as conn:
        # A plain read: on SQLite it must not queue behind a writer for the write lock.
        conn = await conn.execution_options(sqlite_begin="DEFERRED")
        if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return None
        row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
        return str(row[0]) if row else None


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """What model comparison (autogenerate, the drift test) looks at: not the Postgres-only indexes."""
    return not (type_ == "index" and name in POSTGRES_ONLY_INDEXES)
