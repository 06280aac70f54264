"""API keys (only their hashes are stored)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    kind: str = Field(max_length=16)
    """`admin`, `partner` or `store`."""
    partner_id: uuid.UUID | None = Field(default=None, foreign_key="partners.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=32)
    """The readable start of the key, shown in listings so a person can tell keys apart."""
    key_hash: str = Field(max_length=64, unique=True)
    """SHA-256 of the whole key, hex. The key itself is never stored."""
    scopes: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = utc_column()
    created_by: str = Field(max_length=100)
    last_used_at: datetime | None = utc_column(nullable=True)
    """Written at most once a minute per key."""
    revoked_at: datetime | None = utc_column(nullable=True)


class ReadCacheVersion(SQLModel, table=True):
    """A version per topic of what service processes hold in memory (`api_keys`, `terms`), raised by
    the database's triggers in the transaction of any change such a cache must not outlive
    (app/domain/read_cache.py). Never written by the application."""

    __tablename__ = "read_cache_versions"

    topic: str = Field(primary_key=True, max_length=32)
    version: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})
