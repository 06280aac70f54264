"""Terms-change previews: a draft of the program's terms replayed over the program's history, with
nothing of the program changed. Only these rows are written by a preview."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index
from sqlmodel import Field, SQLModel

from app.db.tables.base import utc_column


class TermsPreview(SQLModel, table=True):
    """One preview: its draft, its window, its progress and, once done, its program-wide result.

    Kept a day after it finished; the preview of terms that were then published (same digest) is kept
    with them (`published_version`)."""

    __tablename__ = "terms_previews"
    __table_args__ = (Index(None, "status", "created_at"), Index(None, "draft_digest"))

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    status: str = Field(max_length=16)
    """`queued`, `running`, `done` or `failed`."""
    requested_by: str = Field(max_length=100)
    created_at: datetime = utc_column()
    started_at: datetime | None = utc_column(nullable=True)
    finished_at: datetime | None = utc_column(nullable=True)
    expires_at: datetime = utc_column()
    draft: dict[str, Any] = Field(sa_type=JSON)
    """The draft terms, the document `POST /v1/program/terms` publishes."""
    draft_digest: str = Field(max_length=64)
    effective_from: datetime = utc_column()
    base_version: int
    """The terms version in force when the preview was asked: what the draft is compared with."""
    window_start: str = Field(max_length=7)
    """The first quarter of history replayed, `2026-Q1`."""
    window_end: str = Field(max_length=7)
    """The last quarter of history replayed."""
    orders_total: int = 0
    orders_done: int = 0
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = utc_column(nullable=True)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=1000)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    """Totals for the program, per level and per quarter and kind; the modelled and unmodelled fields."""
    published_version: int | None = None
    """The terms version published from this draft, if any: then the preview is kept with it."""


class TermsPreviewPartner(SQLModel, table=True):
    """A preview's figures for one partner: level and discount now and under the draft, and the
    window's commission actual and under the draft, per currency."""

    __tablename__ = "terms_preview_partners"
    __table_args__ = (Index(None, "preview_id", "impact_rank"),)

    preview_id: uuid.UUID = Field(foreign_key="terms_previews.id", primary_key=True)
    partner_id: uuid.UUID = Field(primary_key=True)
    impact_rank: int
    """1 for the partner the draft affects most (a level move first, then the largest difference)."""
    company: str = Field(max_length=200)
    points_now: int = Field(sa_type=BigInteger)
    points_lapsing: int = Field(sa_type=BigInteger)
    """Points of licences that lapse before the draft's effective date (R10)."""
    points_recount: int = Field(sa_type=BigInteger)
    """Points at the effective date if the draft's points table were applied to every active licence."""
    level_now: str = Field(max_length=16)
    level_current_terms: str = Field(max_length=16)
    """The level at the effective date under the terms in force (lapses alone)."""
    level_draft: str = Field(max_length=16)
    level_recount: str = Field(max_length=16)
    discount_bp_now: int
    discount_bp_draft: int
    commission: dict[str, Any] = Field(sa_type=JSON)
    """`{currency: {"actual": n, "draft": n}}` over the window, minor units."""
