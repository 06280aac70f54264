"""Schema compatibility across deploys (expand/contract).

Each migration module declares `compatible_with`: the oldest application revision whose code still
works against the schema once the migration has run. An expand-only migration (a new table, a
nullable column, an index) keeps the value of the migration before it; a contract migration (a
column dropped, renamed or made required, data rewritten for new rules) names itself. The migration
run records every applied migration's declaration in `schema_compatibility`, in the database, so a
build that does not know a later migration's file can still read what it declared.

A build is ready, and its worker applies events, while the database is at the build's own head or at
a later revision whose recorded chain back to that head declares, at every step, a revision the build
knows (its head or older). Behind its head, or ahead and not declared compatible, it is not.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import migrate
from app.db.types import UTCDateTime

TABLE = "schema_compatibility"
_table = sa.table(
    TABLE,
    sa.column("revision", sa.String()),
    sa.column("oldest_compatible_revision", sa.String()),
    sa.column("down_revision", sa.String()),
    sa.column("applied_at", UTCDateTime()),
)
_version = sa.table("alembic_version", sa.column("version_num", sa.String()))

Code = Literal["ok", "not_migrated", "schema_incompatible"]


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every revision this build's migrations know: its head and all before it."""
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    return frozenset(rev.revision for rev in script.walk_revisions())


@dataclass(frozen=True)
class SchemaState:
    """Where the database's schema stands for this build."""

    code: Code
    schema_revision: str | None
    build_revision: str
    oldest_compatible_revision: str | None = None
    """What the database's revision declares, when it is one this build does not know."""

    @property
    def ready(self) -> bool:
        return self.code == "ok"

    @property
    def ahead(self) -> bool:
        return self.schema_revision is not None and self.schema_revision not in known_revisions()

    def explain(self) -> str:
        """One sentence an operator can act on."""
        db, build = self.schema_revision, self.build_revision
        if self.code == "ok" and self.ahead:
            return (
                f"The database is at revision {db}, later than this build's {build}; it declares application "
                f"revision {self.oldest_compatible_revision} or later compatible, so this build keeps working."
            )
        if self.code == "ok":
            return f"The database is at this build's revision {build}."
        if self.code == "not_migrated":
            where = f"at revision {db}" if db else "not migrated"
            return f"The database is {where}; this build needs revision {build}: run `partners migrate`."
        declared = (
            f"declares application revision {self.oldest_compatible_revision} or later compatible"
            if self.oldest_compatible_revision
            else "records no compatibility with it"
        )
        return (
            f"The database is at revision {db}, later than this build's {build}, and {declared}: this build "
            "must not apply anything to it; deploy the build of that revision."
        )


def read_state(conn: Connection) -> SchemaState:
    """The schema's state for this build, read on `conn` (run it with `run_sync` on an async one)."""
    build = migrate.head_revision()
    known = known_revisions()
    inspector = inspect(conn)
    revision = None
    if inspector.has_table("alembic_version"):
        revision = conn.execute(sa.select(_version.c.version_num)).scalar()
    if revision == build:
        return SchemaState("ok", revision, build)
    if revision is None or revision in known:
        return SchemaState("not_migrated", revision, build)
    rows: dict[str, tuple[str, str | None]] = {}
    if inspector.has_table(TABLE):
        query = sa.select(_table.c.revision, _table.c.oldest_compatible_revision, _table.c.down_revision)
        rows = {r: (oldest, down) for r, oldest, down in conn.execute(query)}
    declared = rows[revision][0] if revision in rows else None
    compatible = _compatible(revision, rows, known, build)
    return SchemaState("ok" if compatible else "schema_incompatible", revision, build, declared)


def _compatible(revision: str, rows: dict[str, tuple[str, str | None]], known: frozenset[str], build: str) -> bool:
    """Walk the recorded chain back from `revision` to revisions this build knows: every migration on the
    way must declare a revision the build knows (its head or older), and the walk must reach the head."""
    reached: set[str] = set()
    pending, seen = [revision], set()
    while pending:
        rev = pending.pop()
        if rev in seen:
            continue
        seen.add(rev)
        if rev in known:
            reached.add(rev)
            continue
        if rev not in rows:
            return False  # a migration that recorded nothing: assume the worst
        oldest, down = rows[rev]
        if oldest not in known:
            return False
        if not down:
            return False  # a chain of its own that never meets this build's
        pending.extend(down.split(","))
    return build in reached


# --- written by the migration run (app/db/migrations/env.py) -------------------------------------


def declared(script: Any) -> str:
    """A migration module's `compatible_with`; one that declares nothing is compatible only with itself."""
    value = getattr(script.module, "compatible_with", None)
    return str(value) if value else str(script.revision)


def _joined(down: str | Sequence[str] | None) -> str | None:
    ids = (down,) if isinstance(down, str) else tuple(down or ())
    return ",".join(ids) or None


def record_step(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Alembic's `on_version_apply` hook: record an applied migration's declaration, forget an undone one.

    Migrations from before the table existed are recorded by the migration that creates it."""
    conn = ctx.connection
    if conn is None or not inspect(conn).has_table(TABLE):
        return
    if not step.is_upgrade:
        for revision in step.up_revision_ids:
            conn.execute(sa.delete(_table).where(_table.c.revision == revision))
        return
    for revision in step.up_revision_ids:
        script = step.revision_map.get_revision(revision)
        assert script is not None
        oldest = declared(script)
        allowed = {revision} | {r.revision for r in step.revision_map.iterate_revisions(revision, "base")}
        if oldest not in allowed:
            raise ValueError(
                f"migration {revision} declares compatible_with = {oldest!r}, which is neither itself nor "
                "a migration before it"
            )
        conn.execute(sa.delete(_table).where(_table.c.revision == revision))
        conn.execute(
            sa.insert(_table).values(
                revision=revision,
                oldest_compatible_revision=oldest,
                down_revision=_joined(script.down_revision),
                applied_at=datetime.now(UTC),
            )
        )


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """`read_state` on a connection of its own, a plain read (on SQLite it does not queue for the writer lock)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(sqlite_begin="DEFERRED")
        return await conn.run_sync(read_state)
