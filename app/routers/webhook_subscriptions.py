"""Outbound webhooks: subscriptions (admin, and a partner's own), their delivery log, retries, pings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.db import tables
from app.domain import subscriptions
from app.domain.context import Caller
from app.domain.subscriptions import ADMIN, Scope
from app.errors import problem_responses
from app.routers import convert
from app.routers.deps import (
    AdminRead,
    AdminWrite,
    ClockDep,
    PartnerOrAdminRead,
    PartnerOrAdminWrite,
    SessionDep,
    SettingsDep,
    context,
)
from app.routers.fields import Cursor, DeliveryPath, PartnerPath, SubscriptionPath, page_size
from app.routers.links import link, links
from app.routers.schemas.outbound import (
    PartnerWebhookSubscription,
    PartnerWebhookSubscriptionCreate,
    PartnerWebhookSubscriptionPage,
    PartnerWebhookSubscriptionUpdate,
    PartnerWebhookSubscriptionWithSecret,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookSubscription,
    WebhookSubscriptionCreate,
    WebhookSubscriptionPage,
    WebhookSubscriptionUpdate,
    WebhookSubscriptionWithSecret,
)

router = APIRouter(prefix="/v1", tags=["outbound webhooks"])

Limit = Annotated[int, page_size(200)]
ADMIN_BASE = "/webhook-subscriptions"
PARTNER_BASE = "/partners/{partner_id}/webhook-subscriptions"


def _subscription(row: tables.WebhookSubscription) -> WebhookSubscription:
    return WebhookSubscription.model_validate(row, from_attributes=True)


def _with_secret(created: subscriptions.WithSecret) -> WebhookSubscriptionWithSecret:
    return WebhookSubscriptionWithSecret(**_subscription(created.subscription).model_dump(), secret=created.secret)


def _subscriptions(rows: Sequence[tables.WebhookSubscription], limit: int) -> WebhookSubscriptionPage:
    page = rows[:limit]
    return WebhookSubscriptionPage(
        items=[_subscription(r) for r in page],
        next_cursor=convert.encode_cursor(page[-1].id) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


def _partners(subscription: WebhookSubscription) -> PartnerWebhookSubscription:
    """A subscription as a partner's routes answer it: one of that partner's, so its partner is set."""
    return PartnerWebhookSubscription.model_validate(subscription.model_dump())


def _partners_with_secret(subscription: WebhookSubscriptionWithSecret) -> PartnerWebhookSubscriptionWithSecret:
    return PartnerWebhookSubscriptionWithSecret.model_validate(subscription.model_dump())


def _delivery(row: tables.WebhookDelivery, attempts: list[tables.WebhookAttempt]) -> WebhookDelivery:
    assert row.id is not None
    return WebhookDelivery(
        id=row.id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        webhook_id=row.message_id,
        status=row.status,
        attempt_count=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        attempts=[WebhookAttempt.model_validate(a, from_attributes=True) for a in attempts],
    )


def _int_cursor(cursor: str | None) -> int | None:
    return convert.decode_int_cursor(cursor)


# --- the operations, shared by the admin's and the partner's routes ----------------------------


async def _create(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    scope: Scope,
    caller: Caller,
    body: WebhookSubscriptionCreate | PartnerWebhookSubscriptionCreate,
) -> WebhookSubscriptionWithSecret:
    created = await subscriptions.create(
        session,
        context(request, caller, clock),
        settings,
        scope,
        url=body.url,
        event_types=body.event_types,
        partner_id=getattr(body, "partner_id", None),
        description=body.description,
    )
    return _with_secret(created)


# --- admin ---------------------------------------------------------------------------------------


@router.post(
    ADMIN_BASE,
    status_code=201,
    responses={
        **problem_responses(401, 403, 404, 422),
        **links(
            201,
            get_webhook_subscription=link("get_webhook_subscription", subscription_id="$response.body#/id"),
            update_webhook_subscription=link("update_webhook_subscription", subscription_id="$response.body#/id"),
            delete_webhook_subscription=link("delete_webhook_subscription", subscription_id="$response.body#/id"),
            rotate_webhook_secret=link("rotate_webhook_secret", subscription_id="$response.body#/id"),
            ping_webhook_subscription=link("ping_webhook_subscription", subscription_id="$response.body#/id"),
            list_webhook_deliveries=link("list_webhook_deliveries", subscription_id="$response.body#/id"),
        ),
    },
    summary="Subscribe to domain events",
)
async def create_webhook_subscription(
    request: Request,
    body: WebhookSubscriptionCreate,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    caller: AdminWrite,
) -> WebhookSubscriptionWithSecret:
    """Admin (write). Deliveries of the chosen event types (of one partner with `partner_id`) are
    POSTed to `url`, signed per Standard Webhooks with the returned `secret`, shown only now."""
    return await _create(request, session, clock, settings, ADMIN, caller, body)


@router.get(ADMIN_BASE, responses=problem_responses(401, 403, 422), summary="List webhook subscriptions")
async def list_webhook_subscriptions(
    session: SessionDep,
    _admin: AdminRead,
    partner_id: Annotated[uuid.UUID | None, Query(description="Only this partner's subscriptions.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> WebhookSubscriptionPage:
    """Admin (read). Every subscription, partners' own included; never their secrets."""
    rows = await subscriptions.search(
        session, ADMIN, partner_id=partner_id, after_id=convert.decode_uuid_cursor(cursor), limit=limit + 1
    )
    return _subscriptions(rows, limit)


@router.get(
    ADMIN_BASE + "/{subscription_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="Read a webhook subscription",
)
async def get_webhook_subscription(
    subscription_id: SubscriptionPath, session: SessionDep, _admin: AdminRead
) -> WebhookSubscription:
    return _subscription(await subscriptions.get(session, ADMIN, subscription_id))


@router.patch(
    ADMIN_BASE + "/{subscription_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="Change a webhook subscription",
)
async def update_webhook_subscription(
    request: Request,
    subscription_id: SubscriptionPath,
    body: WebhookSubscriptionUpdate,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    caller: AdminWrite,
) -> WebhookSubscription:
    """Admin (write). URL, event types, description, enabled."""
    row = await subscriptions.update(
        session, context(request, caller, clock), settings, ADMIN, subscription_id, body.model_dump(exclude_unset=True)
    )
    return _subscription(row)


@router.delete(
    ADMIN_BASE + "/{subscription_id}",
    status_code=204,
    responses=problem_responses(401, 403, 404, 422),
    summary="Delete a webhook subscription",
)
async def delete_webhook_subscription(
    request: Request, subscription_id: SubscriptionPath, session: SessionDep, clock: ClockDep, caller: AdminWrite
) -> Response:
    """Admin (write). The subscription goes, with its delivery log."""
    await subscriptions.remove(session, context(request, caller, clock), ADMIN, subscription_id)
    return Response(status_code=204)


@router.post(
    ADMIN_BASE + "/{subscription_id}/rotate-secret",
    responses=problem_responses(401, 403, 404, 422),
    summary="Rotate a webhook subscription's secret",
)
async def rotate_webhook_secret(
    request: Request,
    subscription_id: SubscriptionPath,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    caller: AdminWrite,
) -> WebhookSubscriptionWithSecret:
    """Admin (write). A new secret, shown only now; the previous one keeps signing beside it for
    24 hours (two signatures in `webhook-signature`)."""
    rotated = await subscriptions.rotate_secret(
        session, context(request, caller, clock), settings, ADMIN, subscription_id
    )
    return _with_secret(rotated)


@router.get(
    ADMIN_BASE + "/{subscription_id}/deliveries",
    responses=problem_responses(401, 403, 404, 422),
    summary="A webhook subscription's delivery log",
)
async def list_webhook_deliveries(
    subscription_id: SubscriptionPath, session: SessionDep, _admin: AdminRead, cursor: Cursor = None, limit: Limit = 50
) -> WebhookDeliveryPage:
    """Admin (read). Deliveries newest first, each with every attempt: time, status, latency, error
    and the first 1 KiB of the answer."""
    return await _deliveries(session, ADMIN, subscription_id, cursor, limit)


@router.post(
    ADMIN_BASE + "/{subscription_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Send a delivery again",
)
async def retry_webhook_delivery(
    request: Request,
    subscription_id: SubscriptionPath,
    delivery_id: DeliveryPath,
    session: SessionDep,
    clock: ClockDep,
    caller: AdminWrite,
) -> WebhookDelivery:
    """Admin (write). Due now: a failed delivery gets one more attempt, a delivered one is sent again
    (same `webhook-id`)."""
    row = await subscriptions.retry(session, context(request, caller, clock), ADMIN, subscription_id, delivery_id)
    return _delivery(row, [])


@router.post(
    ADMIN_BASE + "/{subscription_id}/test",
    status_code=202,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Send a ping",
)
async def ping_webhook_subscription(
    request: Request, subscription_id: SubscriptionPath, session: SessionDep, clock: ClockDep, caller: AdminWrite
) -> WebhookDelivery:
    """Admin (write). A `ping` event to this subscription alone, sent by the worker like any other."""
    row = await subscriptions.ping(session, context(request, caller, clock), ADMIN, subscription_id)
    return _delivery(row, [])


async def _deliveries(
    session: SessionDep, scope: Scope, subscription_id: uuid.UUID, cursor: str | None, limit: int
) -> WebhookDeliveryPage:
    rows, attempts = await subscriptions.deliveries(
        session, scope, subscription_id, before_id=_int_cursor(cursor), limit=limit + 1
    )
    page = rows[:limit]
    return WebhookDeliveryPage(
        items=[_delivery(r, attempts.get(r.id or 0, [])) for r in page],
        next_cursor=convert.encode_cursor(page[-1].id) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


# --- a partner's own -----------------------------------------------------------------------------


@router.post(
    PARTNER_BASE,
    status_code=201,
    responses={
        **problem_responses(401, 403, 404, 422),
        **links(
            201,
            get_partner_webhook_subscription=link(
                "get_partner_webhook_subscription",
                partner_id="$request.path.partner_id",
                subscription_id="$response.body#/id",
            ),
            update_partner_webhook_subscription=link(
                "update_partner_webhook_subscription",
                partner_id="$request.path.partner_id",
                subscription_id="$response.body#/id",
            ),
            delete_partner_webhook_subscription=link(
                "delete_partner_webhook_subscription",
                partner_id="$request.path.partner_id",
                subscription_id="$response.body#/id",
            ),
            rotate_partner_webhook_secret=link(
                "rotate_partner_webhook_secret",
                partner_id="$request.path.partner_id",
                subscription_id="$response.body#/id",
            ),
            ping_partner_webhook_subscription=link(
                "ping_partner_webhook_subscription",
                partner_id="$request.path.partner_id",
                subscription_id="$response.body#/id",
            ),
        ),
    },
    summary="Subscribe a partner to its events",
)
async def create_partner_webhook_subscription(
    request: Request,
    partner_id: PartnerPath,
    body: PartnerWebhookSubscriptionCreate,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    caller: PartnerOrAdminWrite,
) -> PartnerWebhookSubscriptionWithSecret:
    """The partner (or an admin). Only types a partner may read (`partner.*`, `registration.*`,
    `lead.*`, `statement.*`, `terms.took_effect`), and only the partner's own events."""
    return _partners_with_secret(await _create(request, session, clock, settings, Scope(partner_id), caller, body))


@router.get(PARTNER_BASE, responses=problem_responses(401, 403, 404, 422), summary="List a partner's subscriptions")
async def list_partner_webhook_subscriptions(
    partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead, cursor: Cursor = None, limit: Limit = 50
) -> PartnerWebhookSubscriptionPage:
    rows = await subscriptions.search(
        session, Scope(partner_id), partner_id=None, after_id=convert.decode_uuid_cursor(cursor), limit=limit + 1
    )
    page = _subscriptions(rows, limit)
    return PartnerWebhookSubscriptionPage(
        items=[_partners(s) for s in page.items], next_cursor=page.next_cursor, has_more=page.has_more
    )


@router.get(
    PARTNER_BASE + "/{subscription_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="Read a partner's subscription",
)
async def get_partner_webhook_subscription(
    partner_id: PartnerPath, subscription_id: SubscriptionPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> PartnerWebhookSubscription:
    return _partners(_subscription(await subscriptions.get(session, Scope(partner_id), subscription_id)))


@router.patch(
    PARTNER_BASE + "/{subscription_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="Change a partner's subscription",
)
async def update_partner_webhook_subscription(
    request: Request,
    partner_id: PartnerPath,
    subscription_id: SubscriptionPath,
    body: PartnerWebhookSubscriptionUpdate,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    caller: PartnerOrAdminWrite,
) -> PartnerWebhookSubscription:
    row = await subscriptions.update(
        session,
        context(request, caller, clock),
        settings,
        Scope(partner_id),
        subscription_id,
        body.model_dump(exclude_unset=True),
    )
    return _partners(_subscription(row))


@router.delete(
    PARTNER_BASE + "/{subscription_id}",
    status_code=204,
    responses=problem_responses(401, 403, 404, 422),
    summary="Delete a partner's subscription",
)
async def delete_partner_webhook_subscription(
    request: Request,
    partner_id: PartnerPath,
    subscription_id: SubscriptionPath,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerOrAdminWrite,
) -> Response:
    await subscriptions.remove(session, context(request, caller, clock), Scope(partner_id), subscription_id)
    return Response(status_code=204)


@router.post(
    PARTNER_BASE + "/{subscription_id}/rotate-secret",
    responses=problem_responses(401, 403, 404, 422),
    summary="Rotate a partner's subscription secret",
)
async def rotate_partner_webhook_secret(
    request: Request,
    partner_id: PartnerPath,
    subscription_id: SubscriptionPath,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    caller: PartnerOrAdminWrite,
) -> PartnerWebhookSubscriptionWithSecret:
    rotated = await subscriptions.rotate_secret(
        session, context(request, caller, clock), settings, Scope(partner_id), subscription_id
    )
    return _partners_with_secret(_with_secret(rotated))


@router.get(
    PARTNER_BASE + "/{subscription_id}/deliveries",
    responses=problem_responses(401, 403, 404, 422),
    summary="A partner's subscription delivery log",
)
async def list_partner_webhook_deliveries(
    partner_id: PartnerPath,
    subscription_id: SubscriptionPath,
    session: SessionDep,
    _caller: PartnerOrAdminRead,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> WebhookDeliveryPage:
    return await _deliveries(session, Scope(partner_id), subscription_id, cursor, limit)


@router.post(
    PARTNER_BASE + "/{subscription_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Send a partner's delivery again",
)
async def retry_partner_webhook_delivery(
    request: Request,
    partner_id: PartnerPath,
    subscription_id: SubscriptionPath,
    delivery_id: DeliveryPath,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerOrAdminWrite,
) -> WebhookDelivery:
    row = await subscriptions.retry(
        session, context(request, caller, clock), Scope(partner_id), subscription_id, delivery_id
    )
    return _delivery(row, [])


@router.post(
    PARTNER_BASE + "/{subscription_id}/test",
    status_code=202,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Send a ping to a partner's subscription",
)
async def ping_partner_webhook_subscription(
    request: Request,
    partner_id: PartnerPath,
    subscription_id: SubscriptionPath,
    session: SessionDep,
    clock: ClockDep,
    caller: PartnerOrAdminWrite,
) -> WebhookDelivery:
    row = await subscriptions.ping(session, context(request, caller, clock), Scope(partner_id), subscription_id)
    return _delivery(row, [])
