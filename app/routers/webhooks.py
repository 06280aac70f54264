"""The store's signed webhooks, and the admin view of stored, parked and rejected events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from app import deprecation
from app.db.compatibility import schema_state
from app.domain import pricing, webhooks
from app.domain.errors import DomainError, Unavailable
from app.domain.store_events import EXAMPLES
from app.errors import problem_responses
from app.routers import convert
from app.routers.deps import AdminRead, AdminReadOrStore, AdminWrite, ClockDep, SessionDep, SettingsDep, context
from app.routers.fields import Cursor, page_size
from app.routers.schemas.orders import (
    DiscountMismatch,
    DiscountMismatchPage,
    WebhookEvent,
    WebhookEventPage,
    WebhookReceipt,
    WebhookStatusName,
)
from app.settings import Settings

router = APIRouter(prefix="/v1", tags=["webhooks"])

WEBHOOK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/StoreEvent"},
                "examples": {name: {"value": value} for name, value in EXAMPLES.items()},
            }
        },
    }
}
EventId = Annotated[
    int, Path(ge=1, le=2**62, description="The received store event's number, as its receipt's `url` gives it.")
]
MAX_WEBHOOK_ID = 255
MAX_WEBHOOK_TIMESTAMP = 20
MAX_WEBHOOK_SIGNATURE = 2000
"""The longest value each signature header may have (longer: 422); app/intake.py reads them too."""


@router.post(
    "/webhooks/store",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": WebhookReceipt, "description": "A duplicate: this `webhook-id` was received before"},
        **problem_responses(401, 422),
    },
    summary="Receive a store event",
    openapi_extra=WEBHOOK_BODY,
)
async def receive_store_event(
    request: Request,
    response: Response,
    clock: ClockDep,
    settings: SettingsDep,
    webhook_id: Annotated[
        str | None,
        Header(
            alias="webhook-id",
            max_length=MAX_WEBHOOK_ID,
            description="The store's unique id of this event (Standard Webhooks); a repeat is a `duplicate`.",
        ),
    ] = None,
    webhook_timestamp: Annotated[
        str | None,
        Header(
            alias="webhook-timestamp",
            max_length=MAX_WEBHOOK_TIMESTAMP,
            description="When the store sent the event, in Unix seconds; refused more than 5 minutes off.",
        ),
    ] = None,
    webhook_signature: Annotated[
        str | None,
        Header(
            alias="webhook-signature",
            max_length=MAX_WEBHOOK_SIGNATURE,
            description="`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, several space-separated while the "
            "secret is rotated.",
        ),
    ] = None,
) -> WebhookReceipt:
    """Signed as in Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
    (several space-separated signatures allowed during secret rotation); timestamps more than 5 minutes
    off are refused. The answer comes once the event is stored and committed: 202 `accepted` (the
    worker applies accepted events in arrival order; follow `url` to see it `applied`, `parked` or
    `duplicate`), 200 `duplicate` when this `webhook-id` was received before (whatever the body), 401
    (nothing written) for a bad signature, 422 for a malformed body (kept raw, nothing applied).
    Unknown fields are ignored."""
    body = await request.body()
    now = clock.now()
    event_id = verify(settings, webhook_id, webhook_timestamp, webhook_signature, body, now)
    refused: DomainError | None = None
    # For the metrics, counted once answered: signed, so kept; "rejected" unless accepted below.
    request.state.store_event_outcome = "rejected"
    # The lean path: a Core connection and one transaction, no ORM session (the busiest route).
    async with request.app.state.core_unit_of_work() as conn:
        try:
            receipt = await webhooks.accept(conn, webhook_id=event_id, body=body, now=now)
        except DomainError as refusal:  # a malformed body is kept: leave the block, so it commits
            refused = refusal
    if refused is not None:
        raise refused
    request.state.store_event_outcome = receipt.status
    response.status_code = intake_status(receipt)
    return receipt_model(receipt)


def verify(
    settings: Settings, webhook_id: str | None, timestamp: str | None, signature: str | None, body: bytes, now: datetime
) -> str:
    """`webhooks.verify` with the configured secrets: the webhook id, or Unauthenticated."""
    secrets = [s.get_secret_value() for s in settings.webhook_secrets]
    return webhooks.verify(secrets, webhook_id=webhook_id, timestamp=timestamp, signature=signature, body=body, now=now)


def intake_status(receipt: webhooks.Receipt) -> int:
    """The intake's status: 202 for an event stored now, 200 for a duplicate (its webhook-id was
    received before)."""
    return status.HTTP_200_OK if receipt.status == "duplicate" else status.HTTP_202_ACCEPTED


def receipt_model(receipt: webhooks.Receipt) -> WebhookReceipt:
    return WebhookReceipt(
        event_id=receipt.event_id,
        status=receipt.status,
        url=receipt.url,
        reason_code=receipt.reason_code,
        reason=receipt.reason,
    )


def _event(row: Any) -> WebhookEvent:
    return WebhookEvent.model_validate(row, from_attributes=True)


@router.get("/webhook-events", responses=problem_responses(401, 403, 422), summary="List stored store events")
async def list_webhook_events(
    session: SessionDep,
    _admin: AdminRead,
    status: Annotated[WebhookStatusName | None, Query(description="Only the events in this processing status.")] = None,
    reason_code: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[a-z_]+$", description="Only the events parked for this reason."),
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> WebhookEventPage:
    """Admin (read). Newest first; `status=parked` lists what waits for a fix or a replay."""
    rows = await webhooks.search(
        session, status=status, reason_code=reason_code, before_id=convert.decode_int_cursor(cursor), limit=limit + 1
    )
    return WebhookEventPage(**convert.id_page(rows, limit, WebhookEvent))


@router.get(
    "/webhook-events/{event_id}", responses=problem_responses(401, 403, 404, 422), summary="Read a stored event"
)
async def get_webhook_event(event_id: EventId, session: SessionDep, _caller: AdminReadOrStore) -> WebhookEvent:
    """Admin (read) or the store's key. With its raw body: `accepted` until the worker applies it, then
    `applied`, `parked` (with the reason) or `duplicate`."""
    return _event(await webhooks.get(session, event_id))


@router.post(
    "/webhook-events/{event_id}/replay",
    responses={
        202: {"model": WebhookReceipt, "description": "Still parked"},
        **problem_responses(401, 403, 404, 409, 422, 503),
    },
    summary="Replay a parked event",
)
async def replay_webhook_event(
    event_id: EventId, request: Request, response: Response, session: SessionDep, clock: ClockDep, admin: AdminWrite
) -> WebhookReceipt:
    """Admin (write). After fixing the cause (e.g. adding a SKU); 200 when it applied, 202 when still parked.
    503 `schema_incompatible` from an instance whose build does not fit the database's schema (its
    worker is paused for the same reason): an old build never applies rules to a newer schema."""
    state = await schema_state(request.app.state.engine)
    if not state.ready:
        raise Unavailable(state.explain(), code="schema_incompatible", retry_after=30)
    receipt = await webhooks.replay(session, context(request, admin, clock), event_id)
    if receipt.status == "parked":
        response.status_code = status.HTTP_202_ACCEPTED
    return receipt_model(receipt)


@router.get(
    "/discount-mismatches",
    tags=["pricing"],
    responses=problem_responses(401, 403, 422),
    summary="Discount mismatches (deprecated: use /v1/order-flags?kind=discount_mismatch)",
    deprecated=True,
    dependencies=[Depends(deprecation.announce("list_discount_mismatches"))],
)
async def list_discount_mismatches(
    session: SessionDep,
    _admin: AdminRead,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> DiscountMismatchPage:
    """Admin (read). R12: lines where the store applied another discount than the expected one. Kept
    for one release: `GET /v1/order-flags?kind=discount_mismatch` lists them with the other flags."""
    rows = await pricing.mismatches(session, limit=limit + 1, before_id=convert.decode_int_cursor(cursor))
    return DiscountMismatchPage(**convert.id_page(rows, limit, DiscountMismatch))
