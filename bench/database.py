"""The benchmark's own Postgres database: create, migrate with `partners migrate`, drop."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]

from bench.tools import PgTarget, partners_cli

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("PARTNERS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class BenchDatabase:
    name: str
    admin_dsn: str = ADMIN_DSN

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"database name {self.name!r}: use lower-case letters, digits and _")

    @property
    def dsn(self) -> str:
        return self.admin_dsn.rsplit("/", 1)[0] + "/" + self.name

    @property
    def sqlalchemy_url(self) -> str:
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    @property
    def target(self) -> PgTarget:
        parts = urlsplit(self.dsn)
        return PgTarget(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            database=self.name,
        )

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn, timeout=15)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.name}"')

    async def drop(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn, timeout=15)

    def migrate(self) -> float:
        """`partners migrate`, as an operator runs it; returns the seconds it took."""
        started = time.monotonic()
        env = {**os.environ, "PARTNERS_DATABASE_URL": self.sqlalchemy_url}
        result = partners_cli(["migrate"], env=env, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"partners migrate failed:\n{result.stderr[-3000:]}")
        return time.monotonic() - started


async def server_info(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn, timeout=15)
    try:
        version = await conn.fetchval("SHOW server_version")
        max_connections = await conn.fetchval("SHOW max_connections")
        used = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        shared_buffers = await conn.fetchval("SHOW shared_buffers")
        synchronous_commit = await conn.fetchval("SHOW synchronous_commit")
    finally:
        await conn.close()
    return {
        "version": str(version),
        "max_connections": str(max_connections),
        "connections_in_use": str(used),
        "shared_buffers": str(shared_buffers),
        "synchronous_commit": str(synchronous_commit),
    }
