"""Test databases: one migrated template per backend, copied per xdist worker and per
concurrency test, so migrations run once per run and not once per test."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from app.db import migrate

POSTGRES_ADMIN_DSN = os.environ.get("PARTNERS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# Unique per process: two test runs on one machine (or one Postgres) never share a database.
WORKER = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
LOCK_DIR = Path(tempfile.gettempdir()) / "partners-tests"


def migrations_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(migrate.MIGRATIONS.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@contextmanager
def file_lock(name: str) -> Iterator[None]:
    LOCK_DIR.mkdir(exist_ok=True)
    with open(LOCK_DIR / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _asyncpg_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0]
    return f"{base}/{database}"


def sqlalchemy_url(database: str) -> str:
    return _asyncpg_url(POSTGRES_ADMIN_DSN, database).replace("postgresql://", "postgresql+asyncpg://", 1)


async def _admin(sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=10)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def postgres_available() -> str | None:
    """None when Postgres answers; otherwise why not."""
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return None


STALE_TEMPLATE_SECONDS = 24 * 3600


def _mark_used(template: str) -> None:
    LOCK_DIR.mkdir(exist_ok=True)
    (LOCK_DIR / f"{template}.used").touch()


def _unused_for(template: str) -> float | None:
    """Seconds since a test run on this machine last used this template, or None when no run here
    made or used it: another machine's (or another user's) on a shared server, never ours to drop."""
    marker = LOCK_DIR / f"{template}.used"
    if not marker.exists():
        return None
    return time.time() - marker.stat().st_mtime


def drop_stale_templates(existing: set[str], keep: set[str]) -> list[str]:
    """Drop the templates this machine's runs made and none has used for a day; the names dropped."""
    dropped = []
    for stale in sorted(existing - keep):
        unused = _unused_for(stale)
        if unused is not None and unused > STALE_TEMPLATE_SECONDS:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)'))
            (LOCK_DIR / f"{stale}.used").unlink(missing_ok=True)
            dropped.append(stale)
    return dropped


def postgres_template() -> str:
    """The name of a migrated template database for the current migrations."""
    name = f"partners_tpl_{migrations_fingerprint()}"
    with file_lock("postgres-template"):
        rows = asyncio.run(_admin("SELECT datname FROM pg_database WHERE datname LIKE 'partners_tpl_%'"))
        existing = {r["datname"] for r in rows}
        _mark_used(name)
        if name in existing:
            return name
        # Other checkouts on this machine may run their own migrations at the same time: a template
        # is dropped only when no run has used it for a day, never while another run copies it, and
        # only if a run on this machine made it (the server may be shared with other machines).
        drop_stale_templates(existing, keep={name, f"{name}_building"})
        building = f"{name}_building"
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)'))
        asyncio.run(_admin(f'CREATE DATABASE "{building}"'))
        migrate.upgrade(sqlalchemy_url(building))
        asyncio.run(_admin(f'ALTER DATABASE "{building}" RENAME TO "{name}"'))
        return name


async def create_postgres_copy(template: str, name: str) -> str:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return sqlalchemy_url(name)


async def drop_postgres(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlite_template(directory: Path) -> Path:
    path = directory / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def sqlite_copy(template: Path, target: Path) -> str:
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"
