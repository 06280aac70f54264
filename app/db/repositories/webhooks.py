"""SQL for stored webhook events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from app.db.repositories import dialect
from app.db.tables import Licence, RejectedWebhookEvent, WebhookEvent

LICENCE_PREFIX = "licence:"

_EVENTS = WebhookEvent.__table__  # type: ignore[attr-defined]
_REJECTED = RejectedWebhookEvent.__table__  # type: ignore[attr-defined]


_ID_FOR_WEBHOOK_ID = select(_EVENTS.c.id).where(_EVENTS.c.webhook_id == bindparam("webhook_id"))


async def id_for_webhook_id(conn: AsyncConnection, webhook_id: str) -> int | None:
    row = (await conn.execute(_ID_FOR_WEBHOOK_ID, {"webhook_id": webhook_id})).first()
    return int(row[0]) if row else None


def _insert_accepted_stmt(dialect_module: Any) -> Any:
    return (
        dialect_module.insert(_EVENTS)
        .values(
            webhook_id=bindparam("webhook_id"),
            event_type=bindparam("event_type"),
            subject=bindparam("subject"),
            body=bindparam("body"),
            received_at=bindparam("received_at"),
            traceparent=bindparam("traceparent"),
            status="accepted",
            attempts=0,
            failures=0,
        )
        .on_conflict_do_nothing(index_elements=["webhook_id"])
        .returning(_EVENTS.c.id)
    )


# Built once: every webhook the store sends runs it, and a statement built per call costs more to
# build and to find in the compiled cache than the intake's other Python work.
_INSERT_ACCEPTED = dialect.per_dialect(_insert_accepted_stmt)


async def insert_accepted(
    conn: AsyncConnection,
    *,
    webhook_id: str,
    event_type: str,
    subject: str,
    body: str,
    received_at: datetime,
    traceparent: str | None = None,
) -> int | None:
    """Insert an accepted event unless its webhook id is known; None when it is (a redelivery).

    A concurrent delivery of the same id waits here for the first one to commit."""
    parameters = {
        "webhook_id": webhook_id,
        "event_type": event_type,
        "subject": subject,
        "body": body,
        "received_at": received_at,
        "traceparent": traceparent,
    }
    row = (await conn.execute(dialect.pick(conn, _INSERT_ACCEPTED), parameters)).first()
    return int(row[0]) if row else None


async def insert_rejected(
    conn: AsyncConnection, *, webhook_id: str, body: str, errors: list[dict[str, str]], received_at: datetime
) -> None:
    await conn.execute(
        _REJECTED.insert().values(webhook_id=webhook_id, body=body, errors=errors, received_at=received_at)
    )


async def accepted(session: AsyncSession, *, limit: int) -> Sequence[WebhookEvent]:
    """Events waiting for the applier, in arrival order."""
    stmt = (
        select(WebhookEvent)
        .where(col(WebhookEvent.status) == "accepted")
        .order_by(col(WebhookEvent.id))
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalars().all()


async def record_failure(session: AsyncSession, event_id: int, *, error: str, park: bool) -> None:
    values: dict[str, Any] = {"failures": col(WebhookEvent.failures) + 1, "reason": error}
    if park:
        values |= {"status": "parked", "reason_code": "apply_failed"}
    await session.execute(
        update(WebhookEvent)
        .where(col(WebhookEvent.id) == event_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def newest_accepted_id(on: AsyncConnection | AsyncSession) -> int | None:
    stmt = select(func.max(WebhookEvent.id)).where(col(WebhookEvent.status) == "accepted")
    value = (await on.execute(stmt)).scalar_one_or_none()
    return int(value) if value is not None else None


async def any_accepted_up_to(on: AsyncConnection | AsyncSession, event_id: int) -> bool:
    stmt = (
        select(col(WebhookEvent.id))
        .where(col(WebhookEvent.status) == "accepted", col(WebhookEvent.id) <= event_id)
        .limit(1)
    )
    return (await on.execute(stmt)).first() is not None


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many events wait for the applier, and when the oldest of them arrived."""
    stmt = select(func.count(), func.min(WebhookEvent.received_at)).where(col(WebhookEvent.status) == "accepted")
    count, oldest = (await session.execute(stmt)).one()
    return int(count), oldest


async def get(session: AsyncSession, event_id: int, *, for_update: bool = False) -> WebhookEvent | None:
    stmt = select(WebhookEvent).where(col(WebhookEvent.id) == event_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()


async def waiting_for(session: AsyncSession, subject: str) -> Sequence[WebhookEvent]:
    stmt = (
        select(WebhookEvent)
        .where(col(WebhookEvent.waiting_for) == subject, col(WebhookEvent.status) == "parked")
        .order_by(col(WebhookEvent.id))
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()


async def mark_applied(
    session: AsyncSession, ids: Sequence[int], *, reason_code: str | None, applied_at: datetime
) -> None:
    """Events of a batch applied together, with the same outcome."""
    await session.execute(
        update(WebhookEvent)
        .where(col(WebhookEvent.id).in_(ids))
        .values(status="applied", reason_code=reason_code, reason=None, waiting_for=None, applied_at=applied_at)
        .execution_options(synchronize_session=False)
    )


async def due_lapses(session: AsyncSession, now: datetime, limit: int) -> Sequence[WebhookEvent]:
    """Lapses parked as not due (R10) whose licence's term has ended by `now`, oldest first, skipping
    those another worker holds (the grace period is checked when each is applied)."""
    stmt = (
        select(WebhookEvent)
        .join(
            Licence,
            col(Licence.licence_id) == func.substr(col(WebhookEvent.waiting_for), len(LICENCE_PREFIX) + 1),
        )
        .where(
            col(WebhookEvent.status) == "parked",
            col(WebhookEvent.reason_code) == "lapse_not_due",
            col(WebhookEvent.waiting_for).startswith(LICENCE_PREFIX),
            or_(col(Licence.term_end).is_(None), col(Licence.term_end) <= now),
        )
        .order_by(col(WebhookEvent.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookEvent)
    )
    return (await session.execute(stmt)).scalars().all()


async def search(
    session: AsyncSession, *, status: str | None, reason_code: str | None, before_id: int | None, limit: int
) -> Sequence[WebhookEvent]:
    stmt = select(WebhookEvent)
    if status:
        stmt = stmt.where(col(WebhookEvent.status) == status)
    if reason_code:
        stmt = stmt.where(col(WebhookEvent.reason_code) == reason_code)
    if before_id is not None:
        stmt = stmt.where(col(WebhookEvent.id) < before_id)
    stmt = stmt.order_by(col(WebhookEvent.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def rejected(session: AsyncSession, *, limit: int) -> Sequence[RejectedWebhookEvent]:
    stmt = select(RejectedWebhookEvent).order_by(col(RejectedWebhookEvent.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()
