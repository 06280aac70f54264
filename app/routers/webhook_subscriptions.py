"""Outbound webhooks: subscriptions (admin, and a partner's own), their delivery log, retries, pings.

Each route is declared once, in `_declare`, and registered for two audiences: the admin's
(`/v1/webhook-subscriptions`, every subscription) and a partner's own
(`/v1/partners/{partner_id}/webhook-subscriptions`). What differs between them is the `Audience`:
path, who may call, the request bodies, operation names, summaries and descriptions.
"""

# No `from __future__ import annotations`: the routes' parameters name the audience's dependencies,
# which FastAPI must see as objects, not as names to look up in this module.

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

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


# --- the two audiences ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """Whose subscriptions a call reaches, and who makes it."""

    scope: Scope
    caller: Caller


@dataclass(frozen=True)
class Listing:
    scope: Scope
    partner_id: uuid.UUID | None
    """An admin's filter: only this partner's subscriptions."""


@dataclass(frozen=True)
class Page:
    cursor: str | None
    limit: int


@dataclass(frozen=True)
class NewSubscription:
    url: str
    event_types: list[str]
    partner_id: uuid.UUID | None
    description: str | None


@dataclass(frozen=True)
class Audience:
    """One side of the routes. Its dependencies declare the partner's path parameter (when there is
    one) before the routes' own, so each operation's parameters keep their order."""

    base: str
    name: Callable[[str], str]
    """The operation id of an operation (`create_webhook_subscription` -> the audience's own)."""
    read: Callable[..., Any]
    """A dependency answering the `Scope` a read may see."""
    write: Callable[..., Any]
    """A dependency answering the `Access` of a write."""
    listing: Callable[..., Any]
    new: Callable[..., Any]
    """A dependency answering the request body of a create, as a `NewSubscription`."""
    changes: Callable[..., Any]
    """A dependency answering the request body of an update, as the fields sent."""
    summaries: dict[str, str]
    descriptions: dict[str, str]
    created_links: dict[str, Any]
    """The links of a created subscription's answer, by name."""
    list_errors: tuple[int, ...]
    """The error statuses of the list (a 404 only where the path names a partner)."""
    one: type[WebhookSubscription]
    """How a subscription is answered: a partner's always names its partner."""
    with_secret: type[WebhookSubscription]
    """How a subscription is answered with its secret, shown once."""
    page: type[BaseModel]


async def _admin_read(_admin: AdminRead) -> Scope:
    return ADMIN


async def _admin_write(caller: AdminWrite) -> Access:
    return Access(ADMIN, caller)


async def _admin_listing(
    _admin: AdminRead,
    partner_id: Annotated[uuid.UUID | None, Query(description="Only this partner's subscriptions.")] = None,
) -> Listing:
    return Listing(ADMIN, partner_id)


async def _admin_new(body: WebhookSubscriptionCreate) -> NewSubscription:
    return NewSubscription(body.url, body.event_types, body.partner_id, body.description)


async def _admin_changes(body: WebhookSubscriptionUpdate) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


async def _partner_read(partner_id: PartnerPath, _caller: PartnerOrAdminRead) -> Scope:
    return Scope(partner_id)


async def _partner_write(partner_id: PartnerPath, caller: PartnerOrAdminWrite) -> Access:
    return Access(Scope(partner_id), caller)


async def _partner_listing(partner_id: PartnerPath, _caller: PartnerOrAdminRead) -> Listing:
    return Listing(Scope(partner_id), None)


async def _partner_new(body: PartnerWebhookSubscriptionCreate) -> NewSubscription:
    return NewSubscription(body.url, body.event_types, None, body.description)


async def _partner_changes(body: PartnerWebhookSubscriptionUpdate) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


def _admin_link(operation: str) -> dict[str, Any]:
    return link(operation, subscription_id="$response.body#/id")


def _partner_link(operation: str) -> dict[str, Any]:
    return link(operation, partner_id="$request.path.partner_id", subscription_id="$response.body#/id")


def _admin_name(operation: str) -> str:
    return operation


def _partner_name(operation: str) -> str:
    # create_webhook_subscription -> create_partner_webhook_subscription
    verb, rest = operation.split("_", 1)
    return f"{verb}_partner_{rest}"


_LINKED = [
    "get_webhook_subscription",
    "update_webhook_subscription",
    "delete_webhook_subscription",
    "rotate_webhook_secret",
    "ping_webhook_subscription",
]

ADMIN_ROUTES = Audience(
    base=ADMIN_BASE,
    name=_admin_name,
    read=_admin_read,
    write=_admin_write,
    listing=_admin_listing,
    new=_admin_new,
    changes=_admin_changes,
    summaries={
        "create": "Subscribe to domain events",
        "list": "List webhook subscriptions",
        "get": "Read a webhook subscription",
        "update": "Change a webhook subscription",
        "delete": "Delete a webhook subscription",
        "rotate": "Rotate a webhook subscription's secret",
        "deliveries": "A webhook subscription's delivery log",
        "retry": "Send a delivery again",
        "ping": "Send a ping",
    },
    descriptions={
        "create": "Admin (write). Deliveries of the chosen event types (of one partner with `partner_id`) are\n"
        "POSTed to `url`, signed per Standard Webhooks with the returned `secret`, shown only now.",
        "list": "Admin (read). Every subscription, partners' own included; never their secrets.",
        "update": "Admin (write). URL, event types, description, enabled.",
        "delete": "Admin (write). The subscription goes, with its delivery log.",
        "rotate": "Admin (write). A new secret, shown only now; the previous one keeps signing beside it for\n"
        "24 hours (two signatures in `webhook-signature`).",
        "deliveries": "Admin (read). Deliveries newest first, each with every attempt: time, status, latency, error\n"
        "and the first 1 KiB of the answer.",
        "retry": "Admin (write). Due now: a failed delivery gets one more attempt, a delivered one is sent again\n"
        "(same `webhook-id`).",
        "ping": "Admin (write). A `ping` event to this subscription alone, sent by the worker like any other.",
    },
    created_links={name: _admin_link(name) for name in [*_LINKED, "list_webhook_deliveries"]},
    list_errors=(401, 403, 422),
    one=WebhookSubscription,
    with_secret=WebhookSubscriptionWithSecret,
    page=WebhookSubscriptionPage,
)

PARTNER_ROUTES = Audience(
    base=PARTNER_BASE,
    name=_partner_name,
    read=_partner_read,
    write=_partner_write,
    listing=_partner_listing,
    new=_partner_new,
    changes=_partner_changes,
    summaries={
        "create": "Subscribe a partner to its events",
        "list": "List a partner's subscriptions",
        "get": "Read a partner's subscription",
        "update": "Change a partner's subscription",
        "delete": "Delete a partner's subscription",
        "rotate": "Rotate a partner's subscription secret",
        "deliveries": "A partner's subscription delivery log",
        "retry": "Send a partner's delivery again",
        "ping": "Send a ping to a partner's subscription",
    },
    descriptions={
        "create": "The partner (or an admin). Only types a partner may read (`partner.*`, `registration.*`,\n"
        "`lead.*`, `statement.*`, `terms.took_effect`), and only the partner's own events.",
    },
    created_links={_partner_name(name): _partner_link(_partner_name(name)) for name in _LINKED},
    list_errors=(401, 403, 404, 422),
    one=PartnerWebhookSubscription,
    with_secret=PartnerWebhookSubscriptionWithSecret,
    page=PartnerWebhookSubscriptionPage,
)


async def _subscription_id(subscription_id: SubscriptionPath) -> uuid.UUID:
    return subscription_id


async def _delivery_id(delivery_id: DeliveryPath) -> int:
    return delivery_id


async def _page(cursor: Cursor = None, limit: Limit = 50) -> Page:
    return Page(cursor, limit)


SubscriptionId = Annotated[uuid.UUID, Depends(_subscription_id)]
DeliveryId = Annotated[int, Depends(_delivery_id)]
PageDep = Annotated[Page, Depends(_page)]


# --- the routes, declared once -------------------------------------------------------------------


def _declare(audience: Audience) -> None:
    """Register every route for `audience`, in the order the OpenAPI document lists them."""
    Read = Annotated[Scope, Depends(audience.read)]
    Write = Annotated[Access, Depends(audience.write)]
    base, one = audience.base, audience.base + "/{subscription_id}"

    def route(operation: str, key: str, answer: type[BaseModel] | None = None) -> dict[str, Any]:
        declared: dict[str, Any] = {
            "name": audience.name(operation),
            "summary": audience.summaries[key],
            "description": audience.descriptions.get(key, ""),
        }
        if answer is not None:
            declared["response_model"] = answer
        return declared

    def shaped(subscription: WebhookSubscription) -> WebhookSubscription:
        return audience.one.model_validate(subscription.model_dump())

    def with_secret(subscription: WebhookSubscriptionWithSecret) -> WebhookSubscription:
        return audience.with_secret.model_validate(subscription.model_dump())

    @router.post(
        base,
        status_code=201,
        responses={**problem_responses(401, 403, 404, 422), **links(201, **audience.created_links)},
        **route("create_webhook_subscription", "create", audience.with_secret),
    )
    async def create(
        request: Request,
        access: Write,
        body: Annotated[NewSubscription, Depends(audience.new)],
        session: SessionDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> WebhookSubscription:
        created = await subscriptions.create(
            session,
            context(request, access.caller, clock),
            settings,
            access.scope,
            url=body.url,
            event_types=body.event_types,
            partner_id=body.partner_id,
            description=body.description,
        )
        return with_secret(_with_secret(created))

    @router.get(
        base,
        responses=problem_responses(*audience.list_errors),
        **route("list_webhook_subscriptions", "list", audience.page),
    )
    async def list_(
        listing: Annotated[Listing, Depends(audience.listing)], page: PageDep, session: SessionDep
    ) -> BaseModel:
        rows = await subscriptions.search(
            session,
            listing.scope,
            partner_id=listing.partner_id,
            after_id=convert.decode_uuid_cursor(page.cursor),
            limit=page.limit + 1,
        )
        listed = _subscriptions(rows, page.limit)
        return audience.page.model_validate({**listed.model_dump(), "items": [shaped(s) for s in listed.items]})

    @router.get(
        one, responses=problem_responses(401, 403, 404, 422), **route("get_webhook_subscription", "get", audience.one)
    )
    async def get(scope: Read, subscription_id: SubscriptionId, session: SessionDep) -> WebhookSubscription:
        return shaped(_subscription(await subscriptions.get(session, scope, subscription_id)))

    @router.patch(
        one,
        responses=problem_responses(401, 403, 404, 422),
        **route("update_webhook_subscription", "update", audience.one),
    )
    async def update(
        request: Request,
        access: Write,
        subscription_id: SubscriptionId,
        changes: Annotated[dict[str, Any], Depends(audience.changes)],
        session: SessionDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> WebhookSubscription:
        row = await subscriptions.update(
            session, context(request, access.caller, clock), settings, access.scope, subscription_id, changes
        )
        return shaped(_subscription(row))

    @router.delete(
        one,
        status_code=204,
        responses=problem_responses(401, 403, 404, 422),
        **route("delete_webhook_subscription", "delete"),
    )
    async def delete(
        request: Request, access: Write, subscription_id: SubscriptionId, session: SessionDep, clock: ClockDep
    ) -> Response:
        await subscriptions.remove(session, context(request, access.caller, clock), access.scope, subscription_id)
        return Response(status_code=204)

    @router.post(
        one + "/rotate-secret",
        responses=problem_responses(401, 403, 404, 422),
        **route("rotate_webhook_secret", "rotate", audience.with_secret),
    )
    async def rotate(
        request: Request,
        access: Write,
        subscription_id: SubscriptionId,
        session: SessionDep,
        clock: ClockDep,
        settings: SettingsDep,
    ) -> WebhookSubscription:
        rotated = await subscriptions.rotate_secret(
            session, context(request, access.caller, clock), settings, access.scope, subscription_id
        )
        return with_secret(_with_secret(rotated))

    @router.get(
        one + "/deliveries",
        responses=problem_responses(401, 403, 404, 422),
        **route("list_webhook_deliveries", "deliveries"),
    )
    async def deliveries(
        scope: Read, subscription_id: SubscriptionId, page: PageDep, session: SessionDep
    ) -> WebhookDeliveryPage:
        rows, attempts = await subscriptions.deliveries(
            session, scope, subscription_id, before_id=convert.decode_int_cursor(page.cursor), limit=page.limit + 1
        )
        shown = rows[: page.limit]
        return WebhookDeliveryPage(
            items=[_delivery(r, attempts.get(r.id or 0, [])) for r in shown],
            next_cursor=convert.encode_cursor(shown[-1].id) if len(rows) > page.limit else None,
            has_more=len(rows) > page.limit,
        )

    @router.post(
        one + "/deliveries/{delivery_id}/retry",
        status_code=202,
        responses=problem_responses(401, 403, 404, 409, 422),
        **route("retry_webhook_delivery", "retry"),
    )
    async def retry(
        request: Request,
        access: Write,
        subscription_id: SubscriptionId,
        delivery_id: DeliveryId,
        session: SessionDep,
        clock: ClockDep,
    ) -> WebhookDelivery:
        row = await subscriptions.retry(
            session, context(request, access.caller, clock), access.scope, subscription_id, delivery_id
        )
        return _delivery(row, [])

    @router.post(
        one + "/test",
        status_code=202,
        responses=problem_responses(401, 403, 404, 409, 422),
        **route("ping_webhook_subscription", "ping"),
    )
    async def ping(
        request: Request, access: Write, subscription_id: SubscriptionId, session: SessionDep, clock: ClockDep
    ) -> WebhookDelivery:
        row = await subscriptions.ping(session, context(request, access.caller, clock), access.scope, subscription_id)
        return _delivery(row, [])


_declare(ADMIN_ROUTES)
_declare(PARTNER_ROUTES)
