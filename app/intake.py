"""The store webhook intake's fast path: `POST /v1/webhooks/store` answered without the rest of the stack.

The store sends more requests than any other caller, and almost all of them are the happy path: a
correctly signed event that is stored as `accepted`. For those, the middleware below does what the
route does (app/routers/webhooks.py, with the rules of app/domain/webhooks.py) and answers the same
status, body and headers, without the catch-all, the limits, HEAD handling, routing, dependency
solving and response-model validation the normal path goes through.

It sits inside the request-id and observing middlewares, so the answer still carries its request id
and is logged and counted as the route's (it names the route in the scope). Anything it does not
answer for certain goes on to the normal stack, which answers as it always has (each refusal from
the one place that makes it): another method, path or query string, tracing on, headers that the
limits or the route refuse, no `Content-Length` or one over the route's limit, a signature that does
not verify, a body that is not a storable event, and any exception (a fault of the database rolls
its transaction back first). The body it read is handed on as it came.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import tracing
from app.domain import webhooks
from app.domain.errors import DomainError
from app.limits import body_limit, replay
from app.routers import webhooks as route
from app.routers.schemas.orders import WebhookReceipt
from app.settings import Settings

log = logging.getLogger("app.intake")

PATH = "/v1/webhooks/store"
_BOUNDS = {
    b"webhook-id": route.MAX_WEBHOOK_ID,
    b"webhook-timestamp": route.MAX_WEBHOOK_TIMESTAMP,
    b"webhook-signature": route.MAX_WEBHOOK_SIGNATURE,
}
_RECEIPT = TypeAdapter(WebhookReceipt)
"""Serialises the receipt as FastAPI serialises the route's response model (Pydantic's `dump_json`)."""


class IntakeFastPath:
    """Answers the store's storable webhooks itself; hands every other request on untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: APIRoute | None = None  # found in the app's routes on the first webhook
        self._looked_up = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != PATH
            or scope.get("query_string")
            or tracing.active() is not None  # traced requests take the instrumented stack
        ):
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        try:
            answer = await self._answer(scope, receive, received)
        except DomainError:  # a signature that does not verify: the route refuses it
            answer = None
        except Exception as exc:  # whatever it is, the normal path answers it
            if not isinstance(exc, SQLAlchemyError | OSError):  # the database's: the normal path reports it
                log.warning("the intake's fast path failed; the request goes on to the route", exc_info=exc)
            answer = None
        if answer is None:
            await self.app(scope, replay(received, receive) if received else receive, send)
            return
        status, content = answer
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def _answer(self, scope: Scope, receive: Receive, received: list[Message]) -> tuple[int, bytes] | None:
        """The status and body of the route's answer; None to leave the request to the normal path.
        Each message read from `receive` is added to `received`."""
        app: FastAPI = scope["app"]
        route_object = self._webhook_route(app)
        settings: Settings = app.state.settings
        signed = _signature_headers(scope["headers"], settings)
        if route_object is None or signed is None:
            return None
        webhook_id, timestamp, signature, length = signed
        body = await _read_body(receive, length, received)
        if body is None:
            return None
        now = app.state.clock.now()
        event_id = route.verify(settings, webhook_id, timestamp, signature, body, now)
        delivery = webhooks.read_delivery(event_id, body)
        if not isinstance(delivery, webhooks.Storable):
            return None  # the route keeps a malformed body and refuses it
        async with app.state.core_unit_of_work() as conn:
            receipt = await webhooks.store(conn, delivery, now)
        content = _RECEIPT.dump_json(route.receipt_model(receipt))
        # As routing and the route would leave them, for the request log and the metrics.
        scope["route"] = route_object
        scope.setdefault("state", {})["store_event_outcome"] = receipt.status
        return route.intake_status(receipt), content

    def _webhook_route(self, app: FastAPI) -> APIRoute | None:
        if not self._looked_up:
            self._route = find_route(app.routes, PATH, "POST")
            self._looked_up = True
            if self._route is None:
                log.warning("no route POST %s among the app's routes: the intake's fast path is off", PATH)
        return self._route


def find_route(routes: Iterable[Any], path: str, method: str) -> APIRoute | None:
    """The APIRoute that routing puts in the scope for `method path`. FastAPI wraps each included
    router (its `original_router` holds the routes as declared)."""
    for candidate in routes:
        if isinstance(candidate, APIRoute):
            if candidate.path == path and method in (candidate.methods or ()):
                return candidate
            continue
        included = getattr(candidate, "original_router", None)
        if included is not None and (found := find_route(included.routes, path, method)) is not None:
            return found
    return None


def _signature_headers(headers: list[tuple[bytes, bytes]], settings: Settings) -> tuple[str, str, str, int] | None:
    """The signature headers and the body's declared length, when the limits and the route would take
    them as they are: headers within their total bound, each signature header once and within its own
    bound, a `Content-Length` within the route's body limit. None otherwise."""
    total = 0
    found: dict[bytes, bytes] = {}
    length: int | None = None
    for name, value in headers:
        total += len(name) + len(value)
        if name in _BOUNDS:
            if name in found or len(value) > _BOUNDS[name]:
                return None
            found[name] = value
        elif name == b"content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif name == b"transfer-encoding":
            return None
    if total > settings.max_header_bytes or len(found) != len(_BOUNDS):
        return None
    if length is None or length > body_limit(settings, PATH):
        return None
    return (
        found[b"webhook-id"].decode("latin-1"),
        found[b"webhook-timestamp"].decode("latin-1"),
        found[b"webhook-signature"].decode("latin-1"),
        length,
    )


async def _read_body(receive: Receive, length: int, received: list[Message]) -> bytes | None:
    """The whole body when it is the declared length; None when the client went away or sent another
    length (the normal path meets the same messages)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > length:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size == length else None
