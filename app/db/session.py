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


@asynccontextmanager
async def session_scope(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """Yield a session; commit if the caller finished, roll back if it raised."""
    async with factory() as session:
        try:
            yield session
        except DomainError as refusal:
            # A refusal may keep its own record (a refused registration, a rejected webhook body).
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


CoreTransaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


def core_transaction(
    engine: AsyncEngine, session_factory: SessionFactory | None, *, read_only: bool = False
) -> CoreTransaction:
    """A Core connection in a transaction that commits when the block ends (routes that need no ORM
    session). Bound to the session factory's connection when it has one (the tests' outer
    transaction), as a savepoint there. `read_only` on SQLite takes no writer lock."""
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
            connection = await connection.execution_options(sqlite_begin="DEFERRED")
            async with connection.begin():
                yield connection

    return reading
