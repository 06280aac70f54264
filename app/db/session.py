"""Engines and sessions. The one place that commits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app import tracing
from app.db import read_cache
from app.domain.errors import DomainError

SessionFactory = async_sessionmaker[AsyncSession]


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Make SQLite transactions safe under async concurrency.

    Deferred transactions lose updates when two tasks read then write the same row, so every
    transaction starts with BEGIN IMMEDIATE (the writer lock) and waits up to 5 s for it.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A connection may ask for a deferred (read) transaction with
        # `execution_options(sqlite_begin="DEFERRED")`; everything else takes the writer lock.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def ensure_sqlite_directory(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (
        None,
        "",
        ":memory:",
    ):
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine for the URL; its statements are traced when tracing is on (app/tracing.py)."""
    if make_url(url).get_backend_name() == "sqlite":
        ensure_sqlite_directory(url)
        # hide_parameters: a failing statement's error never logs its values (a key's hash, an e-mail).
        engine = create_async_engine(url, hide_parameters=True)
        _configure_sqlite(engine)
    else:
        engine = _postgres_engine(url, pool_size)
    tracing.instrument_engine(engine)
    return engine


def _postgres_engine(url: str, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        url,
        hide_parameters=True,
        pool_size=pool_size,
        # No overflow: a connection opened beyond the pool was closed again when returned, and under
        # load that churn (a new Postgres backend each time) cost the intake about a tenth of its rate
        # (bench/run.py). A request waits for a pooled connection instead.
        max_overflow=0,
        # No pre-ping: it is a round trip and about 0.2 ms of CPU on every checkout (measured with
        # bench/). A connection the server dropped fails its request with 503 instead, and
        # SQLAlchemy then discards every pooled connection older than the failure.
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def create_session_factory(bind: Any, **kwargs: Any) -> SessionFactory:
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=False, **kwargs)


async def reads_only(session: AsyncSession) -> None:
    """Run this session's statements without a transaction of their own, for a request that only
    reads (GET, HEAD). On Postgres that saves the BEGIN and COMMIT round trips, a third of a status
    read; each statement still reads one consistent snapshot, and a write a read makes on the side
    (an API key's last use) commits by itself. SQLite keeps its transactions: its locking differs.
    A session bound to a connection that is already in a transaction (the tests) is left as it is."""
    bind = session.bind
    if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


async def long_read(session: AsyncSession) -> None:
    """For a read that takes a while (a streamed export): no transaction held across its queries on
    Postgres, and a deferred one on SQLite, which takes no writer lock, so writers are not held up."""
    bind = session.bind
    if isinstance(bind, AsyncEngine):
        if bind.dialect.name == "postgresql":
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        else:
            await session.connection(execution_options={"sqlite_begin": "DEFERRED"})


# The unit of work. Every transaction the service runs (a request's, a worker task's, a job's, the
# CLI's) is begun, committed and rolled back here; everywhere else a session may `flush()` and take
# savepoints (`begin_nested()`), never end a transaction. tests/test_unit_of_work.py holds the rest
# of app/ to that.
#
# A second transaction beside the one a caller is already in is deliberate and says why at its call
# site: `unit_of_work(factory, purpose=...)` for one in a session of its own, `commit_now` and
# `roll_back_now` (each with its `purpose`) for the idempotency claim, which splits the request's
# own session into the claim and the work.


@asynccontextmanager
async def unit_of_work(factory: SessionFactory, *, purpose: str | None = None) -> AsyncIterator[AsyncSession]:
    """A session in one transaction: committed if the block finishes, rolled back if it raises.

    A refusal (`DomainError`) that keeps its record (`keep_writes`: a refused registration, a
    rejected webhook body, a counted failed sign-in) commits what was written before it was raised.
    `purpose` names a deliberate second transaction (one kept even when the caller's own fails); it
    is kept in `session.info["purpose"]` for whoever debugs it."""
    async with factory() as session:
        if purpose is not None:
            session.info["purpose"] = purpose
        try:
            try:
                yield session
            except DomainError as refusal:
                if refusal.keep_writes:
                    await session.commit()
                else:
                    await session.rollback()
                raise
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()
        finally:
            read_cache.transaction_ended(session)


async def commit_now(session: AsyncSession, *, purpose: str) -> None:
    """Commit what a unit of work has written so far, before its end; the session carries on in a
    new transaction that the unit of work ends as usual. A deliberate second transaction: `purpose`
    says at the call site why the first part must be visible (or kept) before the rest runs."""
    del purpose  # documentation at the call site
    await session.commit()


async def roll_back_now(session: AsyncSession, *, purpose: str) -> None:
    """Roll back what a unit of work has written since its last commit, before its end, so the
    session can write something that must be kept whatever happened (followed by `commit_now`)."""
    del purpose
    await session.rollback()


ConnectionUnitOfWork = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
CoreTransaction = ConnectionUnitOfWork  # the name app/domain/webhooks.py imports


def connection_unit_of_work(
    engine: AsyncEngine, session_factory: SessionFactory | None, *, read_only: bool = False
) -> ConnectionUnitOfWork:
    """The unit of work for routes that need no ORM session: a Core connection in a transaction that
    commits when the block ends and rolls back if it raises. Bound to the session factory's
    connection when it has one (the tests' outer transaction), as a savepoint there. `read_only`
    takes no writer lock on SQLite, and on Postgres runs each statement without a transaction (no
    BEGIN and COMMIT round trips; each statement reads one snapshot)."""
    bind = session_factory.kw.get("bind") if session_factory is not None else None
    if isinstance(bind, AsyncConnection):
        connection = bind

        @asynccontextmanager
        async def nested() -> AsyncIterator[AsyncConnection]:
            async with connection.begin_nested():
                yield connection

        return nested
    if not read_only:
        return engine.begin

    @asynccontextmanager
    async def reading() -> AsyncIterator[AsyncConnection]:
        async with engine.connect() as connection:
            if engine.dialect.name == "postgresql":  # no BEGIN and COMMIT round trips, as `reads_only`
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            else:
                connection = await connection.execution_options(sqlite_begin="DEFERRED")
            async with connection.begin():
                yield connection

    return reading
