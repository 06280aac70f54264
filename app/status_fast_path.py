"""The status read's fast path: `GET /v1/partners/{partner_id}/status` answered without the rest of the stack.

Dashboards and the store read partner status more than anything else (issue 25). For the happy path
(a known key of the partner itself, or an admin's with `read`, no query string), the middleware below
does what the route does (app/routers/partner_program.py, with the same dependencies' rules:
app/routers/deps.py) and answers the same status, body and headers, without the catch-all, the
limits, HEAD handling, routing, dependency solving and response-model validation the normal path goes
through. Like the webhook intake's (app/intake.py), it sits inside the request-id and observing
middlewares, so the answer carries its request id and is logged and counted as the route's.

It costs one round trip and no ORM session: the key's caller and the terms in force come from the
process's memory (app/db/read_cache.py), exactly as `authenticate` and `terms.in_force` would take
them when that memory is current, and the partner's standing is one statement on a Core connection.

Anything it does not answer for certain goes on to the normal stack, which answers as it always has
(each refusal from the one place that makes it): another method or path, any query string (`as_of`,
unknown parameters), tracing on, headers the limits refuse, a body, an `Authorization` that is not a
plain bearer key, a client address under the failed-authentication throttle, a key the process does
not hold (unknown, revoked, new) or terms it has not read, a check of the cache due (about once a
second per process: the normal path makes it), another partner's key, an admin key without `read`, a
store key, no such partner, and any exception.
"""

from __future__ import annotations

import logging
import re
import uuid

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Receive, Scope, Send

from app import tracing
from app.db import read_cache
from app.db.repositories import ledgers
from app.domain import api_keys, terms
from app.domain import status as status_domain
from app.intake import find_route
from app.routers.schemas.ledgers import PartnerStatus
from app.settings import Settings

log = logging.getLogger("app.status_fast_path")

ROUTE_PATH = "/v1/partners/{partner_id}/status"
_PATH = re.compile(
    r"^/v1/partners/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/status$"
)
_STATUS = TypeAdapter(PartnerStatus)
"""Serialises the answer as FastAPI serialises the route's response model (Pydantic's `dump_json`)."""


class StatusFastPath:
    """Answers the happy path of status reads itself; hands every other request on untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: APIRoute | None = None  # found in the app's routes on the first status read
        self._looked_up = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("query_string")
            or (match := _PATH.match(scope["path"])) is None
            or tracing.active() is not None  # traced requests take the instrumented stack
        ):
            await self.app(scope, receive, send)
            return
        try:
            content = await self._answer(scope, uuid.UUID(match.group(1)))
        except Exception as exc:  # noqa: BLE001 - whatever it is, the normal path answers it (and logs its traceback)
            if not isinstance(exc, SQLAlchemyError | OSError):  # the database's: the normal path reports it
                log.warning("the status read's fast path failed (%r); the request goes on to the route", exc)
            content = None
        if content is None:
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": content})

    async def _answer(self, scope: Scope, partner_id: uuid.UUID) -> bytes | None:
        """The route's answer; None to leave the request to the normal path."""
        app: FastAPI = scope["app"]
        route_object = self._status_route(app)
        settings: Settings = app.state.settings
        key = _bearer_key(scope["headers"], settings)
        if route_object is None or key is None:
            return None
        now = app.state.clock.now()
        client = scope["client"][0] if scope.get("client") else "unknown"
        if app.state.auth_throttle.retry_after(client, now) is not None:
            return None  # the throttle's own path decides
        # What changes rarely comes from the process's memory, as `authenticate` and `in_force` would
        # take it; when either would first read or check (a key not held, a check due), the normal
        # path does, and the requests after it find the memory current again.
        cache: read_cache.ReadCache = app.state.read_cache
        caller = api_keys.remembered(cache, key, now)
        if caller is None:
            return None
        if caller.kind == "partner":
            if caller.partner_id != partner_id:
                return None
        elif caller.kind != "admin" or "read" not in caller.scopes:
            return None
        in_force = terms.remembered(cache, now)
        if in_force is None:
            return None
        until = status_domain.at_risk_until(in_force, now)
        # The one round trip, on a Core connection without a transaction of its own on Postgres
        # (app/db/session.py, `connection_unit_of_work`): an ORM session would cost more Python here
        # than the statement itself.
        async with app.state.read() as connection:
            standing = await ledgers.standing(connection, partner_id, now, until)
        if standing is None:
            return None  # no such partner: the route's 404
        result = status_domain.of_standing(partner_id, in_force, standing, until)
        content = _STATUS.dump_json(PartnerStatus(**result.__dict__), by_alias=True)
        # As routing and the dependencies would leave them, for the request log and the metrics.
        scope["route"] = route_object
        scope.setdefault("state", {})["caller"] = caller
        return content

    def _status_route(self, app: FastAPI) -> APIRoute | None:
        if not self._looked_up:
            self._route = find_route(app.routes, ROUTE_PATH, "GET")
            self._looked_up = True
            if self._route is None:
                log.warning("no route GET %s among the app's routes: the status fast path is off", ROUTE_PATH)
        return self._route


def _bearer_key(headers: list[tuple[bytes, bytes]], settings: Settings) -> str | None:
    """The key of a plain `Authorization: Bearer <key>` sent once, when the headers are within the
    limits' bound and no body is announced; None otherwise."""
    total = 0
    found: bytes | None = None
    for name, value in headers:
        total += len(name) + len(value)
        if name == b"authorization":
            if found is not None:
                return None
            found = value
        elif name in (b"content-length", b"transfer-encoding"):
            return None
    if found is None or total > settings.max_header_bytes or not found.startswith(b"Bearer "):
        return None
    key = found[7:].decode("latin-1")
    if not key or key != key.strip() or " " in key:
        return None
    return key
