"""What a service process holds in memory of what changes rarely, and how long it may outlive a change.

Every authenticated request needs its key's identity and scopes, and most reads the terms in force;
both change rarely, so each process keeps them in memory (issue 25) instead of reading them on every
request. What makes that correct across processes and instances is in the database: a row per topic
in `read_cache_versions` whose version the database's own triggers raise in the transaction of any
change a cache must not outlive (a key revoked, deleted, or given other scopes; any change of the
terms' versions), whoever makes it: another process, another instance, the CLI, a migration.

A request checks that row when the process's last check began more than `CHECK_SECONDS` ago (one
short query, about once a second per busy process: the steady state costs no round trip), and the
process drops each topic whose version moved. No request uses what a process holds when its last
completed check began more than `BOUND_SECONDS` ago: past that, a request checks first. A change
committed at T is therefore seen by every process's requests from T + `BOUND_SECONDS` on (plus the
check's own query); in the process that made it, at once, as the change itself drops the topic (and
dropping again when its transaction ends covers what was read in between). Something read while a
drop happens is not kept: each fill names the generation it was read under.

The keys' `last_used_at` (written at most once a minute per key) is batched the same way: a use is
noted in memory and written with the next check, so recording it costs no round trip of its own.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from app.db.repositories.dialect import table_of
from app.db.tables import ApiKey, ReadCacheVersion

CHECK_SECONDS = 1.0
"""A request checks the versions when the process's last check began longer ago than this."""
BOUND_SECONDS = 3.0
"""No request uses the process's memory once its last completed check began longer ago than this."""
API_KEYS, TERMS = "api_keys", "terms"
MAX_KEYS = 100_000
"""Keys held at most per process; past it the process starts again from none."""
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""A key's use is written at most once per this (as before the cache)."""
SESSION_INFO = "read_cache"
"""The key of the process's cache in the info of each session its session factory makes."""
_CHANGED = "read_cache_changed"
"""The key, in a session's info, of the topics a write of that session changed."""

_VERSIONS = select(col(ReadCacheVersion.topic), col(ReadCacheVersion.version))
_KEYS = table_of(ApiKey)
_TOUCH = (  # Core, not ORM: executed with one parameter set per key
    update(_KEYS)
    .where(
        _KEYS.c.id == bindparam("key_id"),
        _KEYS.c.revoked_at.is_(None),
        _KEYS.c.last_used_at.is_(None) | (_KEYS.c.last_used_at < bindparam("not_since")),
    )
    .values(last_used_at=bindparam("used_at"))
)


@dataclass
class KeyEntry:
    caller: Any
    """The `Caller` the key stands for (app.domain.context)."""
    last_used_at: datetime | None
    """The last use written or queued to be written."""


class ReadCache:
    """One process's memory of API keys (by hash) and of the terms' versions, for one database."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self.keys: dict[str, KeyEntry] = {}
        self.terms_refs: list[tuple[int, datetime, str]] | None = None
        """(version, effective_from, digest) of every terms version, latest first."""
        self.generation = 0
        """Raised by every drop: a fill read under an older generation is not kept."""
        self.versions: dict[str, int] | None = None
        self.checked_at = -math.inf
        """When the last completed check began (monotonic seconds)."""
        self._checking = False
        self.pending_uses: dict[uuid.UUID, datetime] = {}
        self.checks = 0
        self.available = True
        """False while the database has no version row to check (see `refresh`): hold nothing then."""
        self.reader: Callable[[], AbstractAsyncContextManager[AsyncConnection]] | None = None
        """A read-only connection of the process's own for the check (app/main.py sets it)."""
        self.keys_loaded = False
        """Whether every key that is not revoked was read in at once since the keys were last dropped
        (`load_keys`); a key made since is read, and kept, on its first use."""
        self._loading_keys = False

    # -- freshness ----------------------------------------------------------------------------

    def current(self) -> bool:
        """Whether what this process holds may be used now without a check first, exactly when
        `refresh` would be a no-op (the last check is recent, or another request's check is under way
        and the last one is within the bound) and the database has the version row. A reader that does
        not check itself (the status read's fast path) answers from memory only then, and otherwise
        leaves the request to a path that checks."""
        return self.available and self.versions is not None and not self._check_due(self._monotonic())

    def _check_due(self, now: float) -> bool:
        age = now - self.checked_at
        return not (age < CHECK_SECONDS or (self._checking and age < BOUND_SECONDS))

    async def refresh(self, session: AsyncSession) -> None:
        """Check the versions through `session` when due (see the module's text); a no-op otherwise."""
        now = self._monotonic()
        if not self._check_due(now):
            return
        self._checking = True
        try:
            uses, self.pending_uses = self.pending_uses, {}
            try:
                await write_uses(session, uses)
            except BaseException:
                for key_id, used_at in uses.items():  # written with a later check
                    self.pending_uses.setdefault(key_id, used_at)
                raise
            try:
                versions = await self._versions(session)
            except SQLAlchemyError:
                # No version row to check (a database behind this build, before the migration that
                # made it): hold nothing, and read keys and terms from the database, until a check
                # finds it.
                self.available = False
                self.versions = None
                self.drop(API_KEYS, TERMS)
                self.checked_at = max(self.checked_at, now)
                return
        finally:
            self._checking = False
        self.available = True
        self.checks += 1
        if self.versions is None:
            self.drop(API_KEYS, TERMS)
        else:
            moved = [t for t, v in versions.items() if self.versions.get(t) != v]
            if moved:
                self.drop(*moved)
        self.versions = versions
        self.checked_at = max(self.checked_at, now)

    async def _versions(self, session: AsyncSession) -> dict[str, int]:
        """The version of each topic, read on a connection of its own when the process has one
        (`reader`: a failure there leaves the request's transaction as it was), else through `session`."""
        if self.reader is None:
            return {str(t): int(v) for t, v in await session.execute(_VERSIONS)}
        async with self.reader() as connection:
            return {str(t): int(v) for t, v in await connection.execute(_VERSIONS)}

    def drop(self, *topics: str) -> None:
        self.generation += 1
        if API_KEYS in topics:
            self.keys = {}
            self.keys_loaded = False
        if TERMS in topics:
            self.terms_refs = None

    # -- keys ---------------------------------------------------------------------------------

    def remember_key(self, key_hash: str, entry: KeyEntry, generation: int) -> None:
        if generation != self.generation:
            return
        if len(self.keys) >= MAX_KEYS:
            self.keys = {}
        self.keys[key_hash] = entry

    async def load_keys(self, read: Callable[[int], Awaitable[dict[str, KeyEntry] | None]]) -> None:
        """Hold every key that is not revoked, read in one statement by `read(limit)` (None: more than
        the limit, which leaves keys to be read on their first use), once per drop of the keys: a
        process then answers every key from memory from its first request on, whichever it is. One
        request loads; the others meanwhile read their own key."""
        if self.keys_loaded or self._loading_keys:
            return
        self._loading_keys = True
        try:
            generation = self.generation
            loaded = await read(MAX_KEYS)
        finally:
            self._loading_keys = False
        if generation != self.generation:
            return
        if loaded is not None:
            self.keys = {**loaded, **self.keys}
        self.keys_loaded = True

    def note_use(self, entry: KeyEntry, key_id: uuid.UUID, now: datetime) -> None:
        """Queue the key's use to be written, unless one was written or queued within the resolution."""
        if entry.last_used_at is None or entry.last_used_at < now - LAST_USED_RESOLUTION:
            entry.last_used_at = now
            self.pending_uses[key_id] = now

    async def write_uses(self, session: AsyncSession) -> None:
        """Write the uses queued so far, through `session` (before keys are listed, so a list shows
        this process's uses at once)."""
        uses, self.pending_uses = self.pending_uses, {}
        await write_uses(session, uses)

    # -- terms --------------------------------------------------------------------------------

    def remember_terms(self, refs: list[tuple[int, datetime, str]], generation: int) -> None:
        if generation == self.generation:
            self.terms_refs = refs


# Postgres: every use of the batch in one statement (one round trip, one commit), whatever its size.
_TOUCH_PG = text(
    "UPDATE api_keys SET last_used_at = v.used_at "
    "FROM unnest(CAST(:key_ids AS uuid[]), CAST(:used_ats AS timestamptz[])) AS v(id, used_at) "
    "WHERE api_keys.id = v.id AND api_keys.revoked_at IS NULL "
    "AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < v.used_at - CAST(:resolution AS interval))"
)


async def write_uses(session: AsyncSession, uses: dict[uuid.UUID, datetime]) -> None:
    """Write each key's use unless one at most `LAST_USED_RESOLUTION` older is written already."""
    if not uses:
        return
    ordered = sorted(uses.items())
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "key_ids": [key_id for key_id, _ in ordered],
            "used_ats": [used_at for _, used_at in ordered],
            "resolution": LAST_USED_RESOLUTION,
        }
        await session.execute(_TOUCH_PG, params)
        return
    # SQLite: in the request's own transaction, a statement per key costs no round trip.
    rows = [{"key_id": k, "used_at": at, "not_since": at - LAST_USED_RESOLUTION} for k, at in ordered]
    await session.execute(_TOUCH, rows)


def of(session: AsyncSession) -> ReadCache | None:
    """The process's cache for the session's database, or None for a session made without one (the
    worker's, the CLI's): those read the database every time."""
    cache: ReadCache | None = session.info.get(SESSION_INFO)
    return cache


def changed(session: AsyncSession, *topics: str) -> None:
    """A write of `session` changes what caches of `topics` hold: dropped in this process at once, and
    again when the session's transaction ends (app/db/session.py), whether it commits or rolls back,
    so nothing read in between is kept. Other processes learn of it from the version row."""
    cache = of(session)
    if cache is not None:
        cache.drop(*topics)
        session.info.setdefault(_CHANGED, set()).update(topics)


def transaction_ended(session: AsyncSession) -> None:
    topics = session.info.pop(_CHANGED, None)
    cache = of(session)
    if topics and cache is not None:
        cache.drop(*topics)
