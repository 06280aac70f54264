"""SQL for what the program console reads that no other use case does: partners with their level
(searchable by it), statements a page at a time with their partner's name, and the counts behind the
overview's charts of failed deliveries and failed mail. Reads only; each answers one page or one
grouped count."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.tables import MailMessage, Partner, PartnerBalance, Statement, WebhookDelivery, WebhookSubscription


@dataclass(frozen=True)
class PartnerRow:
    partner: Partner
    level: str
    points: int


async def partners(
    session: AsyncSession,
    *,
    q: str | None,
    status: str | None,
    level: str | None,
    country: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[PartnerRow]:
    """Partners matching every given filter (company text, status, level, country), newest first, keyset-
    paginated on (created_at, id); each with its level and points (a partner without any entry yet is an
    Affiliate at 0 points, as the overview counts it)."""
    level_of = func.coalesce(PartnerBalance.level, "affiliate")
    points_of = func.coalesce(PartnerBalance.points, 0)
    stmt = select(Partner, level_of, points_of).outerjoin(
        PartnerBalance, col(PartnerBalance.partner_id) == col(Partner.id)
    )
    if q:  # the text as typed: `%` and `_` in it match themselves
        text = q.lower()
        stmt = stmt.where(
            or_(
                func.lower(col(Partner.company)).contains(text, autoescape=True),
                func.lower(col(Partner.contact_email)).contains(text, autoescape=True),
            )
        )
    if status:
        stmt = stmt.where(col(Partner.status) == status)
    if level:
        stmt = stmt.where(level_of == level)
    if country:
        stmt = stmt.where(col(Partner.country) == country)
    if after:
        stmt = stmt.where(tuple_(col(Partner.created_at), col(Partner.id)) < tuple_(*after))
    stmt = stmt.order_by(col(Partner.created_at).desc(), col(Partner.id).desc()).limit(limit)
    return [PartnerRow(p, str(lv), int(pts)) for p, lv, pts in (await session.execute(stmt)).all()]


async def statements(
    session: AsyncSession, *, quarter: str | None, status: str | None, offset: int, limit: int
) -> list[tuple[Statement, str]]:
    """Statements of a quarter and status (either optional) with their partner's company, newest quarter
    first, a page at a time."""
    stmt = select(Statement, col(Partner.company)).join(Partner, col(Partner.id) == col(Statement.partner_id))
    if quarter:
        stmt = stmt.where(col(Statement.quarter) == quarter)
    if status:
        stmt = stmt.where(col(Statement.status) == status)
    stmt = (
        stmt.order_by(col(Statement.quarter).desc(), col(Partner.company), col(Statement.currency), col(Statement.id))
        .offset(offset)
        .limit(limit)
    )
    return [(s, str(c)) for s, c in (await session.execute(stmt)).all()]


async def statement_quarters(session: AsyncSession) -> list[str]:
    """Every quarter that has statements, newest first (the filter's choices)."""
    stmt = select(col(Statement.quarter)).distinct().order_by(col(Statement.quarter).desc())
    return [str(q) for q in (await session.execute(stmt)).scalars().all()]


@dataclass(frozen=True)
class FailedDeliveries:
    subscription_id: uuid.UUID
    url: str
    enabled: bool
    failed: int


async def failed_deliveries(session: AsyncSession) -> Sequence[FailedDeliveries]:
    """Webhook subscriptions with deliveries given up on, the most failed first."""
    failed = func.count(col(WebhookDelivery.id))
    stmt = (
        select(col(WebhookSubscription.id), col(WebhookSubscription.url), col(WebhookSubscription.enabled), failed)
        .join(WebhookDelivery, col(WebhookDelivery.subscription_id) == col(WebhookSubscription.id))
        .where(col(WebhookDelivery.status) == "failed")
        .group_by(col(WebhookSubscription.id), col(WebhookSubscription.url), col(WebhookSubscription.enabled))
        .order_by(failed.desc(), col(WebhookSubscription.url))
        .limit(20)
    )
    return [FailedDeliveries(i, u, bool(e), int(n)) for i, u, e, n in (await session.execute(stmt)).all()]


async def failed_mail(session: AsyncSession) -> dict[str, int]:
    """Messages given up on after their last attempt, by template."""
    stmt = (
        select(col(MailMessage.template), func.count())
        .where(col(MailMessage.state) == "failed")
        .group_by(col(MailMessage.template))
        .order_by(col(MailMessage.template))
    )
    return {str(t): int(n) for t, n in (await session.execute(stmt)).all()}
