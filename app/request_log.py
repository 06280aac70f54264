"""One log line per request: who asked what, which route answered, how and how fast."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("app.request")


def route_template(scope: Scope) -> str | None:
    """The path of the route that served the request (`/v1/partners/{partner_id}`), None when none did."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def request_fields(scope: Scope, status: int, duration: float) -> dict[str, Any]:
    state = scope.get("state", {})
    caller = state.get("caller")
    headers = dict(scope.get("headers", []))
    webhook_id = headers.get(b"webhook-id")
    partner_id = getattr(caller, "partner_id", None)
    return {
        "method": scope["method"],
        "route": route_template(scope),
        "path": scope["path"],
        "status": status,
        "duration_ms": round(duration * 1000, 2),
        "caller_kind": getattr(caller, "kind", None),
        "partner_id": str(partner_id) if partner_id else None,
        "webhook_id": webhook_id.decode("latin-1")[:100] if webhook_id else None,
    }


class RequestLogMiddleware:
    """Logs each HTTP request once it has been answered (or has failed: status 500).

    Installed inside the request-id middleware, so the line carries the request's id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            fields = request_fields(scope, status, time.perf_counter() - started)
            log.info("%s %s %s", fields["method"], fields["path"], status, extra=fields)
