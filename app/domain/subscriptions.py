"""Outbound webhooks: subscriptions to domain events, their deliveries, retries and log.

Delivery is at least once, by the worker, after commit: the fan-out turns each new domain event into a
delivery per subscription that wants it; the sender claims due deliveries, commits, calls the target
with no transaction open, then records the attempt in a new transaction. Order is not guaranteed:
receivers use the body's `timestamp` and the `webhook-id` (the event id, the same on every attempt).
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from app.db.repositories import events as events_repo
from app.db.repositories import partners as partners_repo
from app.db.repositories import subscriptions as repo
from app.db.tables import DomainEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.domain import audit, events, outbound, sealed
from app.domain.context import Context
from app.domain.errors import Invalid, InvalidTransition, NotFound
from app.settings import Settings

RETRY_AFTER = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
"""Waits after each failed attempt; after the last attempt fails, the delivery has failed."""
DISABLE_AFTER = timedelta(days=5)
"""A subscription whose every attempt failed for this long is disabled."""
PREVIOUS_SECRET_KEPT = timedelta(hours=24)
CLAIM_FOR = timedelta(seconds=60)
"""How long a sender holds a delivery: longer than its call can take (10 s); past it, a sender that
died mid-call has its delivery taken up by another."""
FANOUT = "webhook_fanout"
AUDITED = ("url", "event_types", "description", "enabled", "partner_id", "owner")


@dataclass(frozen=True)
class Scope:
    """Whose subscriptions a route manages: every one (admin routes) or a partner's own."""

    partner_id: uuid.UUID | None = None

    @property
    def owner(self) -> str:
        return "admin" if self.partner_id is None else "partner"


ADMIN = Scope()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _check_types(scope: Scope, types: Sequence[str]) -> list[str]:
    unknown = sorted(t for t in types if t not in events.CATALOGUE)
    if unknown:
        raise Invalid(f"Unknown event types: {', '.join(unknown)}.", code="unknown_event_type", field="event_types")
    if scope.partner_id is not None:
        refused = sorted(t for t in types if not events.partner_may_read(t))
        if refused:
            raise Invalid(
                f"Partners do not receive {', '.join(refused)} events.",
                code="event_type_not_for_partners",
                field="event_types",
            )
    if not types:
        raise Invalid("Subscribe to at least one event type.", code="no_event_types", field="event_types")
    return list(dict.fromkeys(types))


def _check_url(url: str, settings: Settings) -> str:
    try:
        outbound.check_url(url, allow_private=settings.allow_private_targets)
    except outbound.TargetRefused as refused:
        raise Invalid(refused.detail, code=refused.code, field="url") from None
    return url


@dataclass(frozen=True)
class WithSecret:
    subscription: WebhookSubscription
    secret: str


async def create(
    session: AsyncSession,
    ctx: Context,
    settings: Settings,
    scope: Scope,
    *,
    url: str,
    event_types: Sequence[str],
    partner_id: uuid.UUID | None,
    description: str | None,
) -> WithSecret:
    types = _check_types(scope, event_types)
    _check_url(url, settings)
    partner_id = scope.partner_id or partner_id
    if partner_id is not None and await partners_repo.get(session, partner_id) is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    secret = new_secret()
    row = WebhookSubscription(
        owner=scope.owner,
        partner_id=partner_id,
        url=url,
        event_types=types,
        description=description,
        enabled=True,
        secret=sealed.seal(settings, secret),
        after_event_id=await repo.newest_event_id(session),
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        ctx,
        action="webhook_subscription.created",
        object_type="webhook_subscription",
        object_id=row.id,
        after=audit.snapshot(row, AUDITED),
    )
    return WithSecret(row, secret)


async def get(
    session: AsyncSession, scope: Scope, subscription_id: uuid.UUID, *, for_update: bool = False
) -> WebhookSubscription:
    row = await repo.get(session, subscription_id, for_update=for_update)
    foreign = scope.partner_id is not None and (
        row is None or row.owner != "partner" or row.partner_id != scope.partner_id
    )
    if row is None or foreign:
        raise NotFound(f"No webhook subscription {subscription_id}.", code="webhook_subscription_not_found")
    return row


async def search(
    session: AsyncSession, scope: Scope, *, partner_id: uuid.UUID | None, after_id: uuid.UUID | None, limit: int
) -> Sequence[WebhookSubscription]:
    if scope.partner_id is not None:
        return await repo.search(session, owner="partner", partner_id=scope.partner_id, after_id=after_id, limit=limit)
    return await repo.search(session, owner=None, partner_id=partner_id, after_id=after_id, limit=limit)


async def update(
    session: AsyncSession,
    ctx: Context,
    settings: Settings,
    scope: Scope,
    subscription_id: uuid.UUID,
    changes: dict[str, Any],
) -> WebhookSubscription:
    row = await get(session, scope, subscription_id, for_update=True)
    before = audit.snapshot(row, AUDITED)
    # null leaves a field as it is, except the description, which it clears
    changes = {k: v for k, v in changes.items() if v is not None or k == "description"}
    if "url" in changes:
        row.url = _check_url(changes["url"], settings)
    if "event_types" in changes:
        row.event_types = _check_types(
            Scope(row.partner_id) if row.owner == "partner" else ADMIN, changes["event_types"]
        )
    if "description" in changes:
        row.description = changes["description"]
    if "enabled" in changes and changes["enabled"] != row.enabled:
        row.enabled = bool(changes["enabled"])
        if row.enabled:  # receives what happens from now on; what happened meanwhile is not sent
            row.disabled_reason = None
            row.failing_since = None
            row.after_event_id = await repo.newest_event_id(session)
        else:
            row.disabled_reason = f"disabled by {ctx.actor}"
    row.updated_at = ctx.now
    audit.record(
        session,
        ctx,
        action="webhook_subscription.updated",
        object_type="webhook_subscription",
        object_id=row.id,
        before=before,
        after=audit.snapshot(row, AUDITED),
    )
    return row


async def remove(session: AsyncSession, ctx: Context, scope: Scope, subscription_id: uuid.UUID) -> None:
    row = await get(session, scope, subscription_id, for_update=True)
    before = audit.snapshot(row, AUDITED)
    await repo.remove(session, row.id)
    audit.record(
        session,
        ctx,
        action="webhook_subscription.deleted",
        object_type="webhook_subscription",
        object_id=subscription_id,
        before=before,
    )


async def rotate_secret(
    session: AsyncSession, ctx: Context, settings: Settings, scope: Scope, subscription_id: uuid.UUID
) -> WithSecret:
    """A new secret; the current one keeps signing beside it for 24 hours (two signatures), so the
    receiver can switch without losing a delivery."""
    row = await get(session, scope, subscription_id, for_update=True)
    secret = new_secret()
    row.previous_secret = row.secret
    row.previous_secret_expires_at = ctx.now + PREVIOUS_SECRET_KEPT
    row.secret = sealed.seal(settings, secret)
    row.updated_at = ctx.now
    audit.record(
        session,
        ctx,
        action="webhook_subscription.secret_rotated",
        object_type="webhook_subscription",
        object_id=row.id,
        after={"previous_secret_expires_at": row.previous_secret_expires_at.isoformat()},
    )
    return WithSecret(row, secret)


# --- the log, retries and pings ------------------------------------------------------------------


async def deliveries(
    session: AsyncSession, scope: Scope, subscription_id: uuid.UUID, *, before_id: int | None, limit: int
) -> tuple[Sequence[WebhookDelivery], dict[int, list[WebhookAttempt]]]:
    """Deliveries newest first, with their attempts oldest first."""
    await get(session, scope, subscription_id)
    rows = await repo.deliveries(session, subscription_id, before_id=before_id, limit=limit)
    attempts: dict[int, list[WebhookAttempt]] = {}
    for attempt in await repo.attempts(session, [r.id for r in rows if r.id is not None]):
        attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return rows, attempts


async def retry(
    session: AsyncSession, ctx: Context, scope: Scope, subscription_id: uuid.UUID, delivery_id: int
) -> WebhookDelivery:
    """Send a delivery again now: a failed one, a pending one sooner, or a delivered one once more
    (a replay: the same `webhook-id`)."""
    subscription = await get(session, scope, subscription_id)
    row = await repo.delivery(session, delivery_id, for_update=True)
    if row is None or row.subscription_id != subscription.id:
        raise NotFound(f"No delivery {delivery_id} of this subscription.", code="webhook_delivery_not_found")
    if not subscription.enabled:
        raise InvalidTransition("The subscription is disabled; enable it first.", code="webhook_subscription_disabled")
    if row.status == "sending":
        raise InvalidTransition("The delivery is being sent right now.", code="webhook_delivery_in_flight")
    row.status = "pending"
    row.next_attempt_at = ctx.now
    row.attempts = min(row.attempts, len(RETRY_AFTER))  # one more attempt at least, then the schedule
    audit.record(
        session,
        ctx,
        action="webhook_delivery.retried",
        object_type="webhook_delivery",
        object_id=delivery_id,
    )
    return row


def _body(event_type: str, timestamp: datetime, data: dict[str, Any]) -> str:
    moment = timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": moment, "data": data}, separators=(",", ":"))


async def ping(session: AsyncSession, ctx: Context, scope: Scope, subscription_id: uuid.UUID) -> WebhookDelivery:
    """A `ping` event for this subscription alone, due now."""
    subscription = await get(session, scope, subscription_id)
    if not subscription.enabled:
        raise InvalidTransition("The subscription is disabled; enable it first.", code="webhook_subscription_disabled")
    row = WebhookDelivery(
        subscription_id=subscription.id,
        event_id=None,
        event_type="ping",
        message_id=f"ping_{uuid.uuid4().hex}",
        body=_body("ping", ctx.now, {"subscription_id": str(subscription.id)}),
        status="pending",
        attempts=0,
        next_attempt_at=ctx.now,
        created_at=ctx.now,
    )
    session.add(row)
    await session.flush()
    return row


# --- the worker: fan-out -------------------------------------------------------------------------


def wants(subscription: WebhookSubscription, event: DomainEvent) -> bool:
    """Whether the subscription receives the event. A partner's subscription receives only events a
    partner may read about itself, and the program-wide ones; never another partner's."""
    assert event.id is not None
    if event.id <= subscription.after_event_id or event.type not in subscription.event_types:
        return False
    if subscription.owner == "partner":
        if event.type in events.PROGRAM_WIDE:
            return True
        return event.partner_id == subscription.partner_id and events.partner_may_read(event.type)
    return subscription.partner_id is None or event.partner_id == subscription.partner_id


@dataclass
class Holes:
    """Ids missing from the log behind newer events: a transaction still under way (its event may yet
    appear) or one rolled back (it never will). The fan-out's cursor waits at a hole for `grace`
    seconds of wall time before passing it; events past it are fanned out meanwhile."""

    grace: float = 60.0
    first: int | None = None
    seen_at: float = 0.0

    def may_pass(self, hole: int, wall: float) -> bool:
        if self.first != hole:
            self.first, self.seen_at = hole, wall
        return wall - self.seen_at >= self.grace


async def fan_out_due(session: AsyncSession) -> bool:
    """Whether the fan-out has anything to look at (a read: an idle worker writes nothing)."""
    start = await repo.fan_out_start(session)
    return start is not None and await repo.newest_event_id(session) > start


async def any_due(session: AsyncSession, now: datetime) -> bool:
    return await repo.any_due(session, now)


async def fan_out(session: AsyncSession, now: datetime, holes: Holes, wall: float, *, limit: int = 500) -> int:
    """Turn new domain events into deliveries for the enabled subscriptions that want them (the
    caller holds the fan-out's lease). Returns how many deliveries are new plus how far the cursor
    moved (0: nothing to do)."""
    subscriptions = await repo.enabled(session)
    if not subscriptions:
        return 0
    position = await repo.cursor(session, FANOUT)
    start = max(position, min(s.after_event_id for s in subscriptions))
    new = await events_repo.after(session, start, limit=limit)
    rows: list[dict[str, Any]] = []
    for event in new:
        for subscription in subscriptions:
            if wants(subscription, event):
                rows.append(
                    {
                        "subscription_id": subscription.id,
                        "event_id": event.id,
                        "event_type": event.type,
                        "message_id": str(event.id),
                        "body": _body(event.type, event.occurred_at, event.payload),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
    added = await repo.add_deliveries(session, rows)
    reached = start
    for event in new:
        assert event.id is not None
        if event.id != reached + 1 and not holes.may_pass(reached + 1, wall):
            break
        reached = event.id
    moved = reached > position
    if moved:
        await repo.move_cursor(session, FANOUT, reached)
    return added + int(moved)


# --- the worker: sending -------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    delivery_id: int
    message_id: str
    body: str
    url: str
    secrets: tuple[str, ...]
    """Signing secrets, newest first (two during a rotation); none when they cannot be opened."""


async def claim(session: AsyncSession, settings: Settings, now: datetime, *, worker: str, limit: int) -> list[Call]:
    rows = await repo.claim(session, now, worker=worker, until=now + CLAIM_FOR, limit=limit)
    calls: list[Call] = []
    subscriptions: dict[uuid.UUID, WebhookSubscription] = {}
    for row in rows:
        assert row.id is not None
        subscription = subscriptions.get(row.subscription_id) or await repo.get(session, row.subscription_id)
        assert subscription is not None
        subscriptions[subscription.id] = subscription
        try:
            keys = [sealed.open_sealed(settings, subscription.secret)]
            expires = subscription.previous_secret_expires_at
            if subscription.previous_secret and expires is not None and now < expires:
                keys.append(sealed.open_sealed(settings, subscription.previous_secret))
        except InvalidToken:  # sealed with a key no longer in PARTNERS_SECRETS_KEY: an attempt that fails
            keys = []
        calls.append(Call(row.id, row.message_id, row.body, subscription.url, tuple(keys)))
    return calls


def headers(call: Call, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers, signed by the reference library with each current secret."""
    moment = datetime.fromtimestamp(int(now.timestamp()), tz=UTC)
    signatures = " ".join(Webhook(secret).sign(call.message_id, moment, call.body) for secret in call.secrets)
    return {
        "webhook-id": call.message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "qalyptus-partners-webhooks/1",
    }


async def record(
    session: AsyncSession, call: Call, outcome: outbound.Outcome, *, at: datetime, worker: str
) -> str | None:
    """Log the attempt; settle the delivery (delivered, due again later, or failed); after 5 days of
    failures, disable the subscription with an event saying why. Answers how this attempt settled it
    (`delivered`, `retrying`, `failed`: given up), or None when it was not this worker's to settle."""
    row = await repo.delivery(session, call.delivery_id, for_update=True)
    if row is None:  # the subscription was deleted meanwhile
        return None
    session.add(
        WebhookAttempt(
            delivery_id=call.delivery_id,
            attempted_at=at,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error[:1000] if outcome.error else None,
            response_body=outcome.answer,
            worker=worker[:100],
        )
    )
    if row.status != "sending" or row.claimed_by != worker:
        return None  # another worker took it over after this one's claim expired: it settles it
    row.attempts += 1
    row.last_attempt_at = at
    row.claimed_by = None
    row.claimed_until = None
    subscription = await repo.get(session, row.subscription_id, for_update=True)
    assert subscription is not None
    if outcome.delivered:
        row.status, row.delivered_at, row.next_attempt_at = "delivered", at, None
        subscription.failing_since = None
        return "delivered"
    if row.attempts > len(RETRY_AFTER):
        row.status, row.next_attempt_at = "failed", None
    else:
        row.status, row.next_attempt_at = "pending", at + RETRY_AFTER[row.attempts - 1]
    if subscription.failing_since is None:
        subscription.failing_since = at
    elif subscription.enabled and at - subscription.failing_since >= DISABLE_AFTER:
        _disable(session, subscription, at, outcome)
    return "failed" if row.status == "failed" else "retrying"


def _disable(session: AsyncSession, subscription: WebhookSubscription, at: datetime, outcome: outbound.Outcome) -> None:
    assert subscription.failing_since is not None
    reason = f"every delivery failed for 5 days; last: {outcome.error or 'no answer'}"[:500]
    subscription.enabled = False
    subscription.disabled_reason = reason
    subscription.updated_at = at
    events.record(
        session,
        "webhook_subscription.disabled",
        events.WebhookSubscriptionDisabled(
            subscription_id=subscription.id,
            partner_id=subscription.partner_id,
            url=subscription.url,
            failing_since=subscription.failing_since,
            reason=reason,
        ),
        occurred_at=at,
        partner_id=subscription.partner_id,
        subject=f"webhook_subscription:{subscription.id}",
        refs={"subscription_id": subscription.id},
    )
