"""API schemas — outbound webhook subscriptions and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StringConstraints

from app.domain.events import CATALOGUE, partner_may_read
from app.routers.fields import TEXT_PATTERN
from app.routers.schemas.common import RequestModel, request_examples

EventTypeName = Annotated[str, Field(json_schema_extra={"enum": sorted(CATALOGUE)})]
"""An event type of the catalogue; others are refused with `unknown_event_type`."""


PartnerEventTypeName = Annotated[
    str, Field(json_schema_extra={"enum": sorted(t for t in CATALOGUE if partner_may_read(t))})
]
"""An event type a partner may read; others are refused with `event_type_not_for_partners`."""


SubscriptionEventTypes = Annotated[
    list[EventTypeName],
    Field(
        min_length=1,
        max_length=50,
        description="Event types to receive (the catalogue: `GET /v1/events` types, README). "
        "A partner's subscription takes only the types a partner may read.",
        examples=[["partner.approved", "lead.offered"]],
    ),
]


PartnerSubscriptionEventTypes = Annotated[
    list[PartnerEventTypeName],
    Field(
        min_length=1,
        max_length=50,
        description="Event types to receive: those a partner may read (the catalogue: `GET /v1/events` types, README).",
        examples=[["partner.approved", "lead.offered"]],
    ),
]


TargetUrl = Annotated[
    str,
    StringConstraints(
        min_length=8, max_length=2083, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
    ),
    Field(
        description="Where deliveries are POSTed: an absolute URL without user name or password. In production "
        "it must be `https` (else `webhook_target_not_https`) and its host must resolve only to globally routable "
        "addresses (else `webhook_target_not_global`); `http` is taken only where the deployment allows private "
        "targets (PARTNERS_OUTBOUND_ALLOW_PRIVATE, on by default outside production).",
        examples=["https://crm.example.com/hooks/qalyptus"],
    ),
]


SubscriptionDescription = Annotated[str, StringConstraints(max_length=500, pattern=TEXT_PATTERN)]


class WebhookSubscriptionCreate(RequestModel):
    model_config = request_examples(
        {
            "url": "https://crm.example.com/hooks/qalyptus",
            "event_types": ["partner.approved", "lead.offered"],
            "description": "CRM sync",
        }
    )

    url: TargetUrl
    event_types: SubscriptionEventTypes
    partner_id: uuid.UUID | None = Field(
        default=None, description="Admins: only this partner's events. Ignored under a partner's route."
    )
    description: SubscriptionDescription | None = Field(
        default=None, description="A note to tell the subscription apart, at most 500 characters."
    )


class PartnerWebhookSubscriptionCreate(RequestModel):
    model_config = request_examples(
        {"url": "https://crm.example.com/hooks/qalyptus", "event_types": ["lead.offered"], "description": "CRM sync"}
    )

    url: TargetUrl
    event_types: PartnerSubscriptionEventTypes
    description: SubscriptionDescription | None = Field(
        default=None, description="A note to tell the subscription apart, at most 500 characters."
    )


class WebhookSubscriptionUpdate(RequestModel):
    model_config = request_examples({"enabled": True}, {"event_types": ["partner.approved", "lead.offered"]})

    url: TargetUrl | None = Field(default=None, description="A new target URL; omit to keep.")
    event_types: SubscriptionEventTypes | None = Field(
        default=None, description="The event types to receive, replacing the current ones; omit to keep."
    )
    enabled: StrictBool | None = Field(
        default=None, description="`true` re-enables: events from then on are sent (not those missed)."
    )
    description: SubscriptionDescription | None = Field(
        default=None, description="A new note, at most 500 characters; omit to keep."
    )


class PartnerWebhookSubscriptionUpdate(RequestModel):
    model_config = request_examples({"enabled": True}, {"url": "https://crm.example.com/hooks/qalyptus-v2"})

    url: TargetUrl | None = Field(default=None, description="A new target URL; omit to keep.")
    event_types: PartnerSubscriptionEventTypes | None = Field(
        default=None,
        description="The event types to receive, replacing the current ones (those a partner may read); omit to keep.",
    )
    enabled: StrictBool | None = Field(
        default=None, description="`true` re-enables: events from then on are sent (not those missed)."
    )
    description: SubscriptionDescription | None = Field(
        default=None, description="A new note, at most 500 characters; omit to keep."
    )


class WebhookSubscription(BaseModel):
    id: uuid.UUID = Field(description="The subscription's id.")
    owner: Literal["admin", "partner"] = Field(description="Who made it: an admin, or the partner for itself.")
    partner_id: uuid.UUID | None = Field(
        description="The partner whose events it receives; null for an admin's subscription to all."
    )
    url: str = Field(description="Where deliveries are POSTed.")
    event_types: list[str] = Field(description="The event types it receives.")
    description: str | None = Field(description="Its note; null when none.")
    enabled: bool = Field(description="Whether deliveries are sent.")
    disabled_reason: str | None = Field(
        description="Why it was disabled (`disabled by <actor>`, or every delivery failing for 5 days); null "
        "while enabled."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, until when the previous secret also signs."
    )
    created_at: datetime = Field(description="When it was made.")
    updated_at: datetime = Field(description="When it last changed.")


class WebhookSubscriptionWithSecret(WebhookSubscription):
    secret: str = Field(
        description="The signing secret (`whsec_` + base64), shown only now: verify deliveries with it.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookSubscriptionPage(BaseModel):
    items: list[WebhookSubscription] = Field(description="Subscriptions on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class PartnerWebhookSubscription(WebhookSubscription):
    """A subscription to one partner's events, as a partner's routes answer it: `partner_id` is always set."""

    partner_id: uuid.UUID = Field(description="The partner whose events it receives.")


class PartnerWebhookSubscriptionWithSecret(PartnerWebhookSubscription):
    secret: str = Field(
        description="The signing secret (`whsec_` + base64), shown only now: verify deliveries with it.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class PartnerWebhookSubscriptionPage(BaseModel):
    items: list[PartnerWebhookSubscription] = Field(description="The partner's subscriptions on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class WebhookAttempt(BaseModel):
    attempted_at: datetime = Field(description="When the attempt was made.")
    status_code: int | None = Field(description="The target's HTTP status; null when no answer came.")
    latency_ms: int = Field(description="How long the target took to answer, milliseconds.")
    error: str | None = Field(description="Why it failed: a non-2xx answer, a timeout, a refused target...")
    response_body: str | None = Field(description="The first 1 KiB of the answer.")


class WebhookDelivery(BaseModel):
    id: int = Field(description="The delivery's id.")
    subscription_id: uuid.UUID = Field(description="The subscription it is for.")
    event_id: int | None = Field(description="The domain event sent; null for a `ping`.")
    event_type: str = Field(description="The event type sent, or `ping`.")
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    status: Literal["pending", "sending", "delivered", "failed"] = Field(
        description="`pending`, `sending`, `delivered` (a 2xx answer), or `failed` after the last retry."
    )
    attempt_count: int = Field(description="Attempts made so far.")
    next_attempt_at: datetime | None = Field(description="When the next attempt is due; null when none is.")
    created_at: datetime = Field(description="When the delivery was queued.")
    delivered_at: datetime | None = Field(description="When a 2xx answer came; null until then.")
    attempts: list[WebhookAttempt] = Field(description="Each attempt, oldest first.")


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDelivery] = Field(description="Deliveries on this page, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")
