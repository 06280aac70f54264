"""The store's webhooks: verify, store every accepted event, apply it or park it (never drop it)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import orders as orders_repo
from app.db.repositories import webhooks as repo
from app.db.tables import RejectedWebhookEvent, WebhookEvent
from app.domain import audit, json_limits, orders
from app.domain.context import Context
from app.domain.errors import Invalid, InvalidTransition, NotFound, Unauthenticated
from app.domain.store_events import (
    KNOWN_TYPES,
    LicenceLapsed,
    OrderPaid,
    OrderRefunded,
    StoreEvent,
    content_hash,
    subject_of,
)

TOLERANCE = timedelta(minutes=5)
_EVENT = TypeAdapter(StoreEvent)


def _key(secret: str) -> bytes:
    """Standard Webhooks secrets are `whsec_` + base64; any other string is used as it is."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (Standard Webhooks)."""
    digest = hmac.new(_key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secrets: Sequence[str],
    *,
    webhook_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
) -> str:
    """Check the signature headers; return the webhook id. Raises Unauthenticated, writing nothing."""
    if not webhook_id or not timestamp or not signature:
        raise Unauthenticated(
            "Webhooks need the headers webhook-id, webhook-timestamp and webhook-signature.",
            code="webhook_signature_missing",
        )
    if len(webhook_id) > 255:
        raise Unauthenticated("webhook-id is too long.", code="webhook_signature_invalid")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise Unauthenticated("webhook-timestamp must be Unix seconds.", code="webhook_timestamp_invalid") from exc
    if abs(now.timestamp() - sent_at) > TOLERANCE.total_seconds():
        raise Unauthenticated(
            "webhook-timestamp is more than 5 minutes away from this service's clock.", code="webhook_timestamp_stale"
        )
    offered = [part for part in signature.split(" ") if part]
    for secret in secrets:
        expected = sign(secret, webhook_id, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return webhook_id
    raise Unauthenticated("The webhook signature does not match.", code="webhook_signature_invalid")


@dataclass(frozen=True)
class Receipt:
    event_id: int
    status: str
    reason_code: str | None = None
    reason: str | None = None


def _receipt(row: WebhookEvent) -> Receipt:
    assert row.id is not None
    return Receipt(row.id, row.status, row.reason_code, row.reason)


async def receive(session: AsyncSession, ctx: Context, *, webhook_id: str, body: bytes) -> Receipt:
    """Store a verified event and apply it, park it, or recognise it as a duplicate."""
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json_limits.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        await _reject(session, ctx, webhook_id, text, [{"field": "body", "message": f"not JSON: {exc}"}])
    event_type = payload.get("type") if isinstance(payload, dict) else None
    if isinstance(event_type, str) and event_type not in KNOWN_TYPES and len(event_type) <= 64:
        row = await repo.claim(
            session,
            WebhookEvent(
                webhook_id=webhook_id,
                event_type=event_type,
                subject=f"unknown:{webhook_id}",
                body=text,
                received_at=ctx.now,
                status="parked",
            ),
        )
        if row is None:
            return await _duplicate(session, webhook_id)
        _park(row, orders.Park("unknown_event_type", f"This service does not handle {event_type!r} events yet."))
        return _receipt(row)
    try:
        # From the JSON text, strictly: a timestamp must be an RFC 3339 string, a number a JSON number
        # (no Unix times, no numbers in strings); pydantic reads the text itself, once.
        event = _EVENT.validate_json(body, strict=True)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        await _reject(session, ctx, webhook_id, text, errors)
    row = await repo.claim(
        session,
        WebhookEvent(
            webhook_id=webhook_id,
            event_type=event.type,
            subject=subject_of(event),
            body=text,
            received_at=ctx.now,
            status="received",
        ),
    )
    if row is None:
        return await _duplicate(session, webhook_id)
    await _process(session, ctx.now, row, event)
    return _receipt(row)


async def _reject(
    session: AsyncSession, ctx: Context, webhook_id: str, text: str, errors: list[dict[str, str]]
) -> NoReturn:
    repo.add_rejected(
        session, RejectedWebhookEvent(webhook_id=webhook_id, body=text, errors=errors, received_at=ctx.now)
    )
    await session.flush()
    fields = ", ".join(sorted({e["field"] for e in errors}))
    raise Invalid(
        f"The event is signed but malformed ({fields}); it was kept and nothing was applied.",
        code="webhook_event_malformed",
        keep_writes=True,
        errors=errors,
    )


async def _duplicate(session: AsyncSession, webhook_id: str) -> Receipt:
    original = await repo.by_webhook_id(session, webhook_id)
    assert original is not None and original.id is not None
    return Receipt(original.id, "duplicate", "same_webhook_id", f"Event {webhook_id} was received before.")


def _park(row: WebhookEvent, park: orders.Park) -> None:
    row.status = "parked"
    row.reason_code = park.code
    row.reason = park.detail[:1000]
    row.waiting_for = park.waiting_for


async def _process(session: AsyncSession, now: datetime, row: WebhookEvent, event: StoreEvent) -> None:
    """Apply the event in a savepoint: a parked event leaves no partial effect behind."""
    try:
        async with session.begin_nested():
            outcome = await _apply(session, now, row, event)
    except orders.Park as park:
        _park(row, park)
        return
    except orders.AlreadyRecorded:
        conflict = await _compare_with_recorded(session, event)
        if conflict is not None:
            _park(row, conflict)
            return
        row.status, row.reason_code, row.reason = "duplicate", "same_content", "Recorded before under another id."
        row.waiting_for = None
        return
    if outcome == "already_lapsed":  # the same lapse again: no new effect
        row.status, row.reason_code, row.reason = "duplicate", outcome, "The licence had lapsed already."
        return
    row.status = "applied"
    row.reason_code = outcome
    row.reason = None
    row.waiting_for = None
    row.applied_at = now
    if isinstance(event, OrderPaid):  # parked refunds waiting for this order apply now
        for waiting in await repo.waiting_for(session, f"order:{event.data.order_id}"):
            waiting.attempts += 1
            await _process(session, now, waiting, _EVENT.validate_json(waiting.body))


async def _apply(session: AsyncSession, now: datetime, row: WebhookEvent, event: StoreEvent) -> str | None:
    if isinstance(event, OrderPaid):
        existing = await orders_repo.get_order(session, event.data.order_id)
        if existing is not None:
            raise orders.AlreadyRecorded(event.data.order_id)
        order = await orders.apply_order(session, event.data, now=now, event_id=row.id)
        return order.outcome
    if isinstance(event, OrderRefunded):
        if await orders_repo.get_refund(session, event.data.refund_id) is not None:
            raise orders.AlreadyRecorded(event.data.refund_id)
        await orders.apply_refund(session, event.data, now=now)
        return "refunded"
    assert isinstance(event, LicenceLapsed)
    return await orders.apply_lapse(session, event.data.licence_id, event.data.lapsed_at, now=now)


async def _compare_with_recorded(session: AsyncSession, event: StoreEvent) -> orders.Park | None:
    """None when the recorded order or refund says the same; a conflict to park otherwise (R08)."""
    if isinstance(event, OrderPaid):
        recorded = await orders_repo.get_order(session, event.data.order_id)
        if recorded is not None and recorded.content_hash == content_hash(event.data):
            return None
        return orders.Park(
            "order_content_conflict",
            f"Order {event.data.order_id} was delivered before with other content; an admin must decide.",
        )
    if isinstance(event, OrderRefunded):
        refund = await orders_repo.get_refund(session, event.data.refund_id)
        if refund is not None and refund.content_hash == content_hash(event.data):
            return None
        return orders.Park(
            "refund_content_conflict",
            f"Refund {event.data.refund_id} was delivered before with other content; an admin must decide.",
        )
    return None


async def replay(session: AsyncSession, ctx: Context, event_id: int) -> Receipt:
    """Apply a parked event again, after its cause was fixed."""
    row = await repo.get(session, event_id, for_update=True)
    if row is None:
        raise NotFound(f"No webhook event {event_id}.", code="webhook_event_not_found")
    if row.status != "parked":
        raise InvalidTransition(f"Only parked events are replayed; this one is {row.status}.", code="event_not_parked")
    before = {"status": row.status, "reason_code": row.reason_code}
    row.attempts += 1
    if row.event_type in KNOWN_TYPES:
        await _process(session, ctx.now, row, _EVENT.validate_json(row.body))
    await session.flush()
    audit.record(
        session,
        ctx,
        action="webhook_event.replayed",
        object_type="webhook_event",
        object_id=event_id,
        before=before,
        after={"status": row.status, "reason_code": row.reason_code},
    )
    return _receipt(row)


async def search(
    session: AsyncSession, *, status: str | None, reason_code: str | None, before_id: int | None, limit: int
) -> Sequence[WebhookEvent]:
    """Stored events, newest first."""
    return await repo.search(session, status=status, reason_code=reason_code, before_id=before_id, limit=limit)


async def get(session: AsyncSession, event_id: int) -> WebhookEvent:
    row = await repo.get(session, event_id)
    if row is None:
        raise NotFound(f"No webhook event {event_id}.", code="webhook_event_not_found")
    return row
