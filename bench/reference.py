"""The stack's own reference (issue 25): the least a FastAPI + SQLAlchemy async app does for a read.

    uvicorn bench.reference:create_app --factory --workers 2 --no-access-log --port 8001

One route, `GET /balances/{partner_id}`: one primary-key read of `bench_balances` (the table of the
pgbench status baseline, `bench/pgbench/status.sql`) through an `AsyncSession`, answered as JSON
through a pydantic model. No middleware, no authentication, no logging: what any service on this stack
pays at least per read. `bench/run.py` serves it as it serves the service (same uvicorn, workers,
protocol, pool size) right after the service's status reads, on the same database, and divides the
service's figure by it. The database comes from `PARTNERS_BENCH_REFERENCE_URL` (an asyncpg URL).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import BigInteger, DateTime, String, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

URL_VARIABLE = "PARTNERS_BENCH_REFERENCE_URL"
PATH = "/balances/{partner_id}"


class _Base(DeclarativeBase):
    pass


class Balance(_Base):
    __tablename__ = "bench_balances"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)
    level: Mapped[str] = mapped_column(String)
    money: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BalanceOut(BaseModel):
    partner_id: int
    points: int
    level: str
    money: int
    updated_at: datetime


_BY_ID = select(Balance.partner_id, Balance.points, Balance.level, Balance.money, Balance.updated_at).where(
    Balance.partner_id == bindparam("partner_id")
)


def create_app() -> FastAPI:
    url = os.environ[URL_VARIABLE]
    pool_size = int(os.environ.get("PARTNERS_DB_POOL_SIZE", "20"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The service's pool settings (app/db/session.py): no overflow, no pre-ping.
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=False)
        app.state.sessions = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(PATH)
    async def balance(partner_id: int) -> BalanceOut:
        sessions: async_sessionmaker[AsyncSession] = app.state.sessions
        async with sessions() as session:
            row = (await session.execute(_BY_ID, {"partner_id": partner_id})).first()
        if row is None:
            raise HTTPException(404, "no such partner")
        return BalanceOut(
            partner_id=row.partner_id, points=row.points, level=row.level, money=row.money, updated_at=row.updated_at
        )

    return app
