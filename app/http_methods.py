"""Which methods each path answers, read from the routes the service declares.

The 405 answer's `Allow` header is built from this index rather than from the router's internals:
FastAPI 0.165 wraps included routers in objects that are not `Route`s, and a scan of
`app.router.routes` then found nothing ("allowed: ."). The index is built once, from the routers
`create_app` includes, so it holds whatever FastAPI and Starlette do with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class RouteMethods:
    path: str
    pattern: re.Pattern[str]
    methods: frozenset[str]


def _entries(routes: Iterable[object]) -> list[RouteMethods]:
    found = []
    for route in routes:
        if isinstance(route, Route) and route.methods:
            found.append(RouteMethods(route.path, route.path_regex, frozenset(route.methods)))
    return found


def index_routes(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Record the methods of the app's own routes (documents) and of every included router's routes."""
    entries = _entries(app.router.routes)
    for router in routers:
        entries += _entries(router.routes)
    app.state.route_methods = entries


def route_path(scope: Scope) -> str:
    """The request's path as routes match it (without the mount's root path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route serves at `path` (HEAD wherever GET is), sorted."""
    methods: set[str] = set()
    for entry in getattr(app.state, "route_methods", []):
        if entry.pattern.match(path):
            methods |= entry.methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


class HeadMiddleware:
    """HEAD on every path that answers GET: the GET's status and headers, without its body.

    FastAPI routes answer only the methods they declare, so `HEAD /v1/directory` was a 405. The
    request runs as the GET it stands for (same checks, same headers, `Content-Length` included);
    only the body is dropped on the way out.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        if "GET" not in allowed_methods(scope["app"], route_path(scope)):
            await self.app(scope, receive, without_body)  # a 404 or 405, its body dropped as well
            return
        as_get = {**scope, "method": "GET"}
        try:
            await self.app(as_get, receive, without_body)
        finally:
            if "route" in as_get:  # for the request log and the metrics, which read the outer scope
                scope["route"] = as_get["route"]
