"""The store's webhooks: verify, store every accepted event, apply it or park it (never drop it)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from standardwebhooks import Webhook

from app import tracing
from app.db.faults import database_fault
from app.db.repositories import webhooks as repo
from app.db.repositories.batch import LapseReads
from app.db.session import CoreTransaction
from app.db.tables import WebhookEvent
from app.domain import audit, events, json_limits, orders
from app.domain.batch import Facts
from app.domain.context import Context
from app.domain.errors import Invalid, InvalidTransition, NotFound, Unauthenticated, Unavailable
from app.domain.store_events import (
    KNOWN_TYPES,
    LicenceLapsed,
    OrderPaid,
    OrderRefunded,
    StoreEvent,
    content_hash,
    parse_delivery,
    parse_stored,
    storable_text,
    subject_of,
)
from app.messages import sentence

log = logging.getLogger("app.webhooks")
TOLERANCE = timedelta(minutes=5)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the standard prefix, not a secret


def signer(secret: str) -> Webhook:
    """The reference library's signer for a `whsec_` secret: the base64 after the prefix, decoded by
    the library as every Standard Webhooks sender does (the settings accept no other form)."""
    return Webhook(secret)


def whsec_problem(secret: str) -> str | None:
    """Why a secret is not a usable `whsec_<base64>` secret, with the fix, or None. The secret
    itself is never part of the answer."""
    if not secret.startswith(SECRET_PREFIX):
        return (
            "is not of the form whsec_<base64>. The Standard Webhooks form of the same secret is `whsec_` "
            "followed by its bytes in base64, which this prints without echoing it: python3 -c 'import "
            'base64, getpass; print("whsec_" + base64.b64encode(getpass.getpass("secret: ").encode())'
            ".decode())'"
        )
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64 after `whsec_`"
    return None if key else "is empty after `whsec_`"


def sign(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, computed by the `standardwebhooks` library.
    The body must be UTF-8 (the library signs text)."""
    moment = datetime.fromtimestamp(int(timestamp), tz=UTC)
    return signer(secret).sign(webhook_id, moment, body.decode("utf-8"))


def _matches(expected: str, offered: str) -> bool:
    """Compare one offered `v1,<base64>` signature as the reference library does (decoded bytes);
    other versions never match. Raises on a malformed entry, as the library does."""
    version, signature = offered.split(",")
    if version != "v1":
        return False
    return hmac.compare_digest(base64.b64decode(expected.split(",")[1]), base64.b64decode(signature))


def verify(
    secrets: Sequence[str],
    *,
    webhook_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
) -> str:
    """Check the signature headers; return the webhook id. Raises Unauthenticated, writing nothing.

    The signature is computed by the reference library; the timestamp is checked against this
    service's clock (the library would read the wall clock). Anything the library raises (a malformed
    signature header, a body that is not UTF-8) is a 401, never a 500."""
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
    try:
        for secret in secrets:
            expected = sign(secret, webhook_id, timestamp, body)
            if any(_matches(expected, candidate) for candidate in offered):
                return webhook_id
    except Exception as exc:  # noqa: BLE001 - whatever the library or base64 refuses in what was sent
        raise Unauthenticated(
            f"The webhook signature could not be checked ({exc.__class__.__name__}).",
            code="webhook_signature_invalid",
        ) from None
    raise Unauthenticated("The webhook signature does not match.", code="webhook_signature_invalid")


@dataclass(frozen=True)
class Receipt:
    event_id: int
    status: str
    reason_code: str | None = None
    reason: str | None = None

    @property
    def url(self) -> str:
        return f"/v1/webhook-events/{self.event_id}"


def _receipt(row: WebhookEvent) -> Receipt:
    assert row.id is not None
    return Receipt(row.id, row.status, row.reason_code, row.reason)


MAX_FAILURES = 5
"""Unexpected errors an event may raise while applied before it is parked as `apply_failed`."""


@dataclass(frozen=True)
class Storable:
    """A signed body to store as `accepted`: a known event that validates, or a well-formed event of a
    type this service does not know yet (stored as it came; the applier parks it)."""

    webhook_id: str
    event_type: str
    subject: str
    text: str


@dataclass(frozen=True)
class Malformed:
    """A signed body that is not a storable event: kept raw with what is wrong with it, and refused."""

    webhook_id: str
    text: str
    errors: list[dict[str, str]]


def read_delivery(webhook_id: str, body: bytes) -> Storable | Malformed:
    """What a verified delivery is, before the database is asked anything: the intake's rules."""
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json_limits.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _malformed(webhook_id, text, [{"field": "body", "message": f"not JSON: {exc}"}])
    event_type = payload.get("type") if isinstance(payload, dict) else None
    if isinstance(event_type, str) and event_type not in KNOWN_TYPES and len(event_type) <= 64:
        if not storable_text(event_type):
            # A NUL or a lone surrogate never reaches the database as a column of its own.
            error = {"field": "type", "message": "The type must not contain control characters or lone surrogates."}
            return Malformed(webhook_id, text, [error | {"type": "string_invalid"}])
        # Stored as it came: the applier parks it, so an admin sees it and can replay it later.
        return Storable(webhook_id, event_type, f"unknown:{webhook_id}", text)
    try:
        event = parse_delivery(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": sentence(e), "type": e["type"]}
            for e in exc.errors()
        ]
        return Malformed(webhook_id, text, errors)
    return Storable(webhook_id, event.type, subject_of(event), text)


def _malformed(webhook_id: str, text: str, errors: list[dict[str, str]]) -> Malformed:
    """A body that is not JSON, kept as it came. Text columns take no NUL character: a body holding
    NUL bytes is kept base64-encoded instead, which its errors say, so its bytes stay intact."""
    if "\x00" in text:
        encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
        kept = {"field": "body", "message": "held NUL bytes: kept base64-encoded", "type": "body_base64"}
        return Malformed(webhook_id, encoded, [*errors, kept])
    return Malformed(webhook_id, text, errors)


async def accept(conn: AsyncConnection, *, webhook_id: str, body: bytes, now: datetime) -> Receipt:
    """Store a verified event for the applier (the intake): a duplicate, or `accepted`.

    The lean path of the busiest route: a Core connection and, for a new event, one INSERT. A
    `webhook-id` seen before is a duplicate whatever its body says (a malformed body is looked up
    before it is refused); a malformed body is kept and refused."""
    delivery = read_delivery(webhook_id, body)
    if isinstance(delivery, Malformed):
        return await _refuse(conn, delivery, now)
    return await store(conn, delivery, now)


async def store(conn: AsyncConnection, delivery: Storable, now: datetime) -> Receipt:
    """Store a storable delivery as `accepted`, or answer it as a duplicate of the event stored
    under its `webhook-id` before."""
    event_id = await repo.insert_accepted(
        conn,
        webhook_id=delivery.webhook_id,
        event_type=delivery.event_type,
        subject=delivery.subject,
        body=delivery.text,
        received_at=now,
        traceparent=tracing.current_traceparent(),  # the worker's span applying it links to this request
    )
    if event_id is None:  # received before (or the same id, delivered at the same moment, won the insert)
        original = await repo.id_for_webhook_id(conn, delivery.webhook_id)
        assert original is not None
        return _duplicate_of(original, delivery.webhook_id)
    return Receipt(event_id, "accepted")


def _duplicate_of(event_id: int, webhook_id: str) -> Receipt:
    return Receipt(event_id, "duplicate", "same_webhook_id", f"Event {webhook_id} was received before.")


async def _refuse(conn: AsyncConnection, delivery: Malformed, now: datetime) -> Receipt:
    """A duplicate when this webhook id was received before; otherwise keep the malformed body (the
    caller commits it) and raise what is wrong with it."""
    webhook_id, errors = delivery.webhook_id, delivery.errors
    original = await repo.id_for_webhook_id(conn, webhook_id)
    if original is not None:
        return _duplicate_of(original, webhook_id)
    await repo.insert_rejected(conn, webhook_id=webhook_id, body=delivery.text, errors=errors, received_at=now)
    fields = ", ".join(sorted({e["field"] for e in errors}))
    raise Invalid(
        f"The event is signed but malformed ({fields}); it was kept and nothing was applied.",
        code="webhook_event_malformed",
        keep_writes=True,
        errors=errors,
    )


MAX_CONTENDED = 3
"""Times a batch is applied again, reading afresh, when another transaction wrote what one of its
events was about to write (`orders.Contended`); after that, the event counts as failed."""


@dataclass(frozen=True)
class _Failed(Exception):
    """An event of a batch raised unexpectedly (or was `contended`): the batch's savepoint is rolled
    back."""

    index: int
    error: BaseException
    contended: bool = False


async def apply_accepted(session: AsyncSession, now: datetime, *, limit: int) -> Counter[str]:
    """Apply accepted events in arrival order; return how many were settled, by outcome (`applied`,
    `parked`, `duplicate`, `apply_failed`).

    The caller holds the applier's lease, so events apply one at a time across all workers, in
    batches (`apply_batch`). An event whose application raises unexpectedly stops the batch there
    (later events wait: the order matters) and is tried again on the next pass; after MAX_FAILURES
    it is parked as `apply_failed`. A fault of the database rolls the whole batch back."""
    rows = await repo.accepted(session, limit=limit)
    settled = await apply_batch(session, now, rows)
    return Counter(status for status, _ in settled.values())


async def apply_batch(
    session: AsyncSession, now: datetime, rows: Sequence[WebhookEvent], *, failures_park: bool = False
) -> dict[int, tuple[str, str | None]]:
    """Apply these stored events, in order: the one path every store event takes, alone or with
    others (the worker, the admin's replay, the due-lapses job, the events that waited for one).

    The facts the batch's rules need are gathered once (`Facts.gather`), each event's rules decide
    against them as the events before it left them, and what they made is written together. An
    event that parks or repeats an earlier one is settled so, in the same batch: nothing of it was
    written. When an event applies that parked events wait for (a refund before its order, a lapse
    before its licence's renewal), the batch ends with it and those events apply next, then the rest.
    An event that raises unexpectedly rolls the batch back; the events before it are applied again
    and it records a failure (parked `apply_failed` at once with `failures_park`), and later events
    wait for the next pass unless it was parked. Returns each event's status and reason code."""
    settled: dict[int, tuple[str, str | None]] = {}
    rest = list(rows)
    contended = 0
    while rest:
        try:
            async with session.begin_nested():
                done, waiters = await _apply_rows(session, now, rest)
        except _Failed as failed:
            await _reload(session, rest)
            if failed.contended and (contended := contended + 1) < MAX_CONTENDED:
                continue  # read afresh: what the other transaction wrote is seen now
            if failed.index:  # what came before it applies as it did
                settled |= await apply_batch(session, now, rest[: failed.index], failures_park=failures_park)
            row = rest[failed.index]
            parked = await _failed(session, row, failed.error, now, park_now=failures_park)
            if not parked:
                break  # it and later events wait for the next pass: the order matters
            settled[_id(row)] = ("parked", "apply_failed")
            rest = rest[failed.index + 1 :]
            continue
        settled |= done
        rest = rest[len(done) :]
        if waiters:  # they applied nowhere else: a failure of theirs parks them, this batch stands
            for waiting in waiters:
                waiting.attempts += 1
            after = await apply_batch(session, now, waiters, failures_park=True)
            settled |= {event_id: outcome for event_id, outcome in after.items() if event_id in settled}
    return settled


def _id(row: WebhookEvent) -> int:
    assert row.id is not None
    return row.id


async def _reload(session: AsyncSession, rows: Sequence[WebhookEvent]) -> None:
    """The rows as the rolled-back savepoint left them."""
    for row in rows:
        await session.refresh(row)


async def _failed(
    session: AsyncSession, row: WebhookEvent, error: BaseException, now: datetime, *, park_now: bool
) -> bool:
    """Record an unexpected failure of the event; True when it is parked (`apply_failed`) for it."""
    log.error("store event %s failed to apply (failure %s)", row.id, row.failures + 1, exc_info=error)
    text = f"{error.__class__.__name__}: {error}"
    if park_now:
        _park(session, row, orders.Park("apply_failed", text), now)
        return True
    parked = row.failures + 1 >= MAX_FAILURES
    await repo.record_failure(session, _id(row), error=text[:1000], park=parked)
    if parked:
        await session.refresh(row)
        _record_parked(session, row, now)
    return parked


async def _apply_rows(
    session: AsyncSession, now: datetime, rows: Sequence[WebhookEvent]
) -> tuple[dict[int, tuple[str, str | None]], list[WebhookEvent]]:
    """Apply events from the first, in the caller's savepoint, up to the end or to the first one that
    parked events wait for: each event's status and reason code, and the events waiting for the last.
    Raises _Failed for an event that raised unexpectedly (a fault of the database is raised as it is)."""
    parsed = [parse_stored(row.body) if row.event_type in KNOWN_TYPES else None for row in rows]
    subjects = [subject for e in parsed if e is not None for subject in _waited_for(e)]
    facts = await Facts.gather(
        session,
        subjects,
        orders=[orders.reads_of(e.data) for e in parsed if isinstance(e, OrderPaid)],
        refunds=[orders.refund_reads_of(e.data) for e in parsed if isinstance(e, OrderRefunded)],
        lapses=[LapseReads(e.data.licence_id, e.data.lapsed_at) for e in parsed if isinstance(e, LicenceLapsed)],
    )
    settled: dict[int, tuple[str, str | None]] = {}
    applied: dict[str | None, list[int]] = {}
    waiting: list[str] = []
    for index, (row, event) in enumerate(zip(rows, parsed, strict=True)):
        with tracing.span(  # linked to the request that accepted it
            "store_event.apply",
            {"store_event.id": _id(row), "store_event.type": row.event_type},
            linked_to=row.traceparent,
        ) as span:
            try:
                status, code = await _apply_one(session, facts, now, row, event)
            except Exception as exc:
                if database_fault(exc) is not None:
                    raise
                tracing.failed(span, exc)
                raise _Failed(index, exc, contended=isinstance(exc, orders.Contended)) from exc
            span.set_attribute("store_event.status", status)
        if status == "applied":
            applied.setdefault(code, []).append(_id(row))
            settled[_id(row)] = ("applied", code)
            assert event is not None
            waiting = [s for s in _waited_for(event) if facts.waited_for(s)]
            if waiting:
                break  # the events waiting for it apply next
        else:
            settled[_id(row)] = (row.status, row.reason_code)
            if row.status == "parked" and row.waiting_for:
                facts.parked_waiting_for(row.waiting_for)  # an event of this batch may settle it
    try:
        await facts.writes.write(session)
    except orders.Contended as exc:
        raise _Failed(0, exc, contended=True) from exc
    await session.flush()
    for code, ids in applied.items():
        await repo.mark_applied(session, ids, reason_code=code, applied_at=now)
    waiters: list[WebhookEvent] = []
    for subject in waiting:
        waiters += [w for w in await repo.waiting_for(session, subject) if w not in waiters]
    return settled, waiters


async def wait_until_applied(read: CoreTransaction, *, within: float, poll: float = 0.02) -> None:
    """Wait until every event accepted before now has been settled: work that may still change a
    level (R12 prices by level). Raises Unavailable (`level_pending`) when that takes longer than
    `within` seconds of wall time."""
    async with read() as conn:
        newest = await repo.newest_accepted_id(conn)
    if newest is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        async with read() as conn:
            if not await repo.any_accepted_up_to(conn, newest):
                return
        if loop.time() >= deadline:
            raise Unavailable(
                "Store events accepted before this request may still change the partner's level and are not "
                "applied yet; ask again in a moment.",
                code="level_pending",
                retry_after=1,
            )
        await asyncio.sleep(poll)


def _park(session: AsyncSession, row: WebhookEvent, park: orders.Park, now: datetime) -> None:
    """Park the event; tell it (`store_event.parked`) unless it was parked for that reason already (a
    replay or a due-lapse run that finds the cause unchanged)."""
    told = row.status == "parked" and row.reason_code == park.code
    row.status = "parked"
    row.reason_code = park.code
    row.reason = park.detail[:1000]
    row.waiting_for = park.waiting_for
    if not told:
        _record_parked(session, row, now)


def _record_parked(session: AsyncSession, row: WebhookEvent, now: datetime) -> None:
    assert row.id is not None
    events.record(
        session,
        "store_event.parked",
        events.StoreEventParked(
            event_id=row.id,
            webhook_id=row.webhook_id,
            event_type=row.event_type,
            reason_code=row.reason_code,
            reason=row.reason,
        ),
        occurred_at=now,
        partner_id=None,
        subject=f"webhook_event:{row.id}",
        refs={"webhook_event_id": row.id},
    )


def _waited_for(event: StoreEvent) -> list[str]:
    """The subjects parked events may wait for that this event, applied, settles."""
    if not isinstance(event, OrderPaid):
        return []
    subjects = [f"order:{event.data.order_id}"]
    # R10: an early lapse parked until its licence's term end is decided by a renewal arriving first.
    subjects += sorted(
        {f"licence:{ln.licence_id}" for ln in event.data.lines if ln.kind == "renewal" and ln.licence_id}
    )
    return subjects


async def _apply_one(
    session: AsyncSession, facts: Facts, now: datetime, row: WebhookEvent, event: StoreEvent | None
) -> tuple[str, str | None]:
    """Apply one event of a batch: ("applied", its outcome), or the row parked or marked a duplicate
    and its (status, reason code). A park or a repeat is found before the event writes anything."""
    if event is None:
        park = orders.Park("unknown_event_type", f"This service does not handle {row.event_type!r} events yet.")
        _park(session, row, park, now)
        return row.status, row.reason_code
    try:
        outcome = await _apply(session, facts, now, row, event)
    except orders.Park as park:
        _park(session, row, park, now)
        return row.status, row.reason_code
    except orders.AlreadyRecorded:
        await _settle_recorded(session, facts, now, row, event)
        return row.status, row.reason_code
    if outcome == "already_lapsed":  # the same lapse again: no new effect
        row.status, row.reason_code, row.reason = "duplicate", outcome, "The licence had lapsed already."
        row.waiting_for = None
        return row.status, row.reason_code
    return "applied", outcome


async def _apply(
    session: AsyncSession, facts: Facts, now: datetime, row: WebhookEvent, event: StoreEvent
) -> str | None:
    """Apply one event's rules; its outcome."""
    if isinstance(event, OrderPaid):
        order = await orders.apply_order(session, facts, event.data, now=now, event_id=row.id)
        return order.outcome
    if isinstance(event, OrderRefunded):
        await orders.apply_refund(session, facts, event.data, now=now)
        return "refunded"
    assert isinstance(event, LicenceLapsed)
    return await orders.apply_lapse(session, facts, event.data.licence_id, event.data.lapsed_at, now=now)


async def _settle_recorded(
    session: AsyncSession, facts: Facts, now: datetime, row: WebhookEvent, event: StoreEvent
) -> None:
    """The order or refund was recorded before: a duplicate when it says the same, a conflict to park
    otherwise (R08)."""
    if isinstance(event, OrderPaid):
        same = await facts.recorded_hash(session, event.data.order_id) == content_hash(event.data)
        conflict = orders.Park(
            "order_content_conflict",
            f"Order {event.data.order_id} was delivered before with other content; an admin must decide.",
        )
    else:
        assert isinstance(event, OrderRefunded)
        refund = await facts.refund(session, event.data.refund_id)
        same = refund is not None and refund.content_hash == content_hash(event.data)
        conflict = orders.Park(
            "refund_content_conflict",
            f"Refund {event.data.refund_id} was delivered before with other content; an admin must decide.",
        )
    if not same:
        _park(session, row, conflict, now)
        return
    row.status, row.reason_code, row.reason = "duplicate", "same_content", "Recorded before under another id."
    row.waiting_for = None


async def apply_due_lapses(session: AsyncSession, now: datetime, *, batch: int = 500) -> int:
    """R10, for the due-lapses job: apply the lapses parked as not due whose moment has come, then
    lapse the licences overdue without any lapse event. Returns how many licences lapsed.

    Safe from several workers at once: each skips the events and licences another one holds."""
    rows = await repo.due_lapses(session, now, batch)
    for row in rows:
        row.attempts += 1
    settled = await apply_batch(session, now, rows, failures_park=True) if rows else {}
    lapsed = sum(1 for outcome in settled.values() if outcome == ("applied", "lapsed"))
    await session.flush()
    return lapsed + await orders.sweep_lapses(session, now=now, batch=batch)


async def replay(session: AsyncSession, ctx: Context, event_id: int) -> Receipt:
    """Apply a parked event again, after its cause was fixed."""
    row = await repo.get(session, event_id, for_update=True)
    if row is None:
        raise NotFound(f"No webhook event {event_id}.", code="webhook_event_not_found")
    if row.status != "parked":
        raise InvalidTransition(f"Only parked events are replayed; this one is {row.status}.", code="event_not_parked")
    before = {"status": row.status, "reason_code": row.reason_code}
    row.attempts += 1
    await apply_batch(session, ctx.now, [row], failures_park=True)  # the path every store event takes
    await session.flush()
    await session.refresh(row)
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
