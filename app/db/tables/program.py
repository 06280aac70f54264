"""The audit trail, program settings and the versions of the program's terms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column
from app.db.types import BigIntId


class AuditEvent(SQLModel, table=True):
    """Append-only: who did what to which object, with the state before and after."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "object_type", "object_id"),)

    id: int | None = Field(default=None, sa_type=BigIntId, primary_key=True)
    occurred_at: datetime = utc_column(index=True)
    actor: str = Field(max_length=100)
    """`admin:<key id>`, `partner:<partner id>`, `store:<key id>`, `public`, `cli` or `system`."""
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=64)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    request_id: str | None = Field(default=None, max_length=64)


class ProgramSettings(SQLModel, table=True):
    """One row of program-wide switches that admins change at run time."""

    __tablename__ = "program_settings"

    id: int = Field(default=1, primary_key=True)
    auto_approve: bool = True
    """New partners are active at once; when off, they wait as `pending` for an admin."""
    updated_at: datetime = utc_column()


class ProgramTermsVersion(SQLModel, table=True):
    """An immutable version of the program's numbers, in force from `effective_from` (R01, R02)."""

    __tablename__ = "program_terms_versions"

    version: int = Field(primary_key=True)
    effective_from: datetime = utc_column(index=True)
    published_at: datetime = utc_column()
    published_by: str = Field(max_length=100)
    terms: dict[str, Any] = Field(sa_type=JSON)
    digest: str = Field(max_length=64)
    """SHA-256 of `terms` (app.domain.terms.digest): names the content, so a process parses it once."""
