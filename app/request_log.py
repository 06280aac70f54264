"""One log line per request: who asked what, which route answered, how and how fast."""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import Scope

from app import tracing

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
    client = scope.get("client")  # the proxy's address unless FORWARDED_ALLOW_IPS trusts it
    return {
        "client": client[0] if client else None,
        "method": scope["method"],
        "route": route_template(scope),
        "path": scope["path"],
        "status": status,
        "duration_ms": round(duration * 1000, 2),
        "caller_kind": getattr(caller, "kind", None),
        "partner_id": str(partner_id) if partner_id else None,
        "webhook_id": webhook_id.decode("latin-1")[:100] if webhook_id else None,
    }


def log_request(scope: Scope, status: int, seconds: float) -> None:
    """One line for an answered request (or a failed one: status 500)."""
    fields = request_fields(scope, status, seconds)
    traceparent = tracing.current_traceparent()  # the request's span, when tracing is on
    if traceparent is not None:
        fields["traceparent"] = traceparent
    log.info("%s %s %s", fields["method"], fields["path"], status, extra=fields)
