"""The application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics, tracing
from app.cors import PublicCorsMiddleware
from app.db import migrate
from app.db.faults import database_fault
from app.db.read_cache import ReadCache
from app.db.session import SessionFactory, connection_unit_of_work, create_engine, create_session_factory
from app.domain import events as events_catalogue
from app.domain.clock import Clock, SystemClock
from app.domain.program import AuthThrottle
from app.domain.store_events import StoreEvent
from app.errors import (
    PROBLEM_MEDIA_TYPE,
    RESPONSE_DESCRIPTIONS,
    database_problem,
    install_error_handlers,
    unexpected_error,
)
from app.http_methods import HeadMiddleware, index_routes
from app.intake import IntakeFastPath
from app.limits import RequestLimitsMiddleware
from app.log import configure as configure_logging
from app.log import request_id_var
from app.observe import ObserveMiddleware
from app.routers import (
    admin,
    api_docs,
    customers,
    directory,
    events,
    exports,
    health,
    leads,
    pages,
    partner_program,
    partners,
    payee,
    payouts,
    people,
    previews,
    program,
    reviews,
    statements,
    webhook_subscriptions,
    webhooks,
)
from app.routers import metrics as metrics_router
from app.routers import problems as problems_router
from app.routers.deps import reject_unknown_query_parameters
from app.security_headers import SecurityHeadersMiddleware
from app.settings import Settings
from app.status_fast_path import StatusFastPath
from app.worker import Worker

log = logging.getLogger("app")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    """Takes the caller's `X-Request-ID` (when sane) or makes one; echoes it on the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class CatchAllMiddleware:
    """Answers any exception no handler took: 503 for a database fault, else 500 problem+json with
    the request id, logged with its traceback. It does not re-raise (Starlette's own last-resort
    handler does), so the server keeps the keep-alive connection open for the client's next request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            return  # the client went away mid-request: no one to answer, nothing went wrong here
        except Exception as exc:
            if response_started:  # half an answer is out: only closing the connection can end it
                raise
            request = Request(scope)
            fault = database_fault(exc)
            if fault is not None:
                response = database_problem(request, fault, exc)
            else:
                response = await unexpected_error(request, exc)
            await response(scope, receive, send)


def _operation_id(route: APIRoute) -> str:
    return route.name


def _declared_order(routes: list[Any], declared: tuple[Any, ...]) -> list[Any]:
    """The app's routes with those of the included routers in the order `declared` lists them (the
    order of the OpenAPI document), every other route where it is."""
    rank = {id(router): n for n, router in enumerate(declared)}

    def included(route: Any) -> bool:
        return id(getattr(route, "original_router", None)) in rank

    ordered = iter(sorted((r for r in routes if included(r)), key=lambda r: rank[id(r.original_router)]))
    return [next(ordered) if included(route) else route for route in routes]


def _problem_openapi(app: FastAPI, routes: list[Any]) -> dict[str, Any]:
    """FastAPI's schema, with every error answer declared as problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=routes,
        tags=app.openapi_tags,
    )
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if not path.startswith("/health/"):
                responses.setdefault("503", {"description": RESPONSE_DESCRIPTIONS[503]})
            if "requestBody" in operation:
                responses.setdefault("400", {"description": RESPONSE_DESCRIPTIONS[400]})
                responses.setdefault("413", {"description": RESPONSE_DESCRIPTIONS[413]})
            if operation.get("security"):  # failed authentication is throttled per client address
                responses.setdefault("429", {"description": RESPONSE_DESCRIPTIONS[429]})
            # Unknown query parameters are refused on every operation.
            responses.setdefault("422", {"description": RESPONSE_DESCRIPTIONS[422]})
            for code, response in responses.items():
                if not code.isdigit() or int(code) < 400:
                    continue
                content = response.setdefault("content", {})
                ref = content.get("application/json", {}).get("schema", problem_ref).get("$ref", "")
                if not ref.endswith(("/Problem", "/HTTPValidationError")):
                    continue
                if ref.endswith("/HTTPValidationError"):
                    response["description"] = RESPONSE_DESCRIPTIONS[422]
                # Errors are problem+json whatever the success media type (CSV routes included).
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    # The webhook body is read raw (its signature covers the bytes), so its schema is added here.
    store_event = TypeAdapter(StoreEvent).json_schema(ref_template="#/components/schemas/{model}")
    components.update(store_event.pop("$defs", {}))
    components["StoreEvent"] = store_event
    # Each domain event type's payload, with an example, named after the type.
    for event_type, kind in events_catalogue.CATALOGUE.items():
        payload = kind.payload.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(payload.pop("$defs", {}))
        payload["description"] = kind.description
        payload["examples"] = [kind.example]
        components[f"EventPayload.{event_type}"] = payload
    _outbound_webhooks(schema)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def _outbound_webhooks(schema: dict[str, Any]) -> None:
    """Each domain event a subscriber may receive, as an OpenAPI webhook: the body
    `{"type", "timestamp", "data"}` with the type's payload schema and an example."""
    webhooks: dict[str, Any] = {}
    for event_type, kind in events_catalogue.CATALOGUE.items():
        example = {"type": event_type, "timestamp": "2026-03-02T09:00:00Z", "data": kind.example}
        body = {
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {"const": event_type, "description": "The event type: always this one for this webhook."},
                "timestamp": {"type": "string", "format": "date-time", "description": "When it happened."},
                "data": {"$ref": f"#/components/schemas/EventPayload.{event_type}"},
            },
        }
        webhooks[event_type] = {
            "post": {
                "summary": kind.description,
                "description": "Sent to subscribers signed per Standard Webhooks (`webhook-id`: the event id, "
                "the same on every attempt; `webhook-timestamp`; `webhook-signature`). Any 2xx answer "
                "within 10 s delivers it; anything else is retried.",
                "operationId": f"event_{event_type.replace('.', '_')}",
                "tags": ["outbound webhooks"],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body, "example": example}},
                },
                "responses": {"2XX": {"description": "Received."}},
            }
        }
    schema["webhooks"] = webhooks
    schema["x-event-types"] = sorted(events_catalogue.CATALOGUE)


async def _sign_in_first(request: Request, exc: pages.SignInFirst) -> Response:
    """A page that needs a signed-in user, asked without one: the sign-in page, back here after."""
    return pages.sign_in_first(exc.path)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    session_factory: SessionFactory | None = None,
    served: bool = False,
) -> FastAPI:
    """Build the service. Tests pass their own clock and a session factory bound to their transaction;
    `served` is for a server process that runs this one app for its lifetime (`create_served_app`)."""
    settings = settings or Settings()
    settings.refuse_placeholder_secrets()
    configure_logging(settings.log_level_number, settings.resolved_log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        metrics.watch_pool(engine)
        if settings.should_migrate_on_start and session_factory is None:
            await asyncio.to_thread(migrate.upgrade, settings.database_url)
        app.state.engine = engine
        app.state.session_factory = session_factory or create_session_factory(engine)
        app.state.core_unit_of_work = connection_unit_of_work(engine, session_factory)
        app.state.read = connection_unit_of_work(engine, session_factory, read_only=True)
        app.state.read_cache.reader = app.state.read  # its checks never touch a request's transaction
        app.state.worker = Worker(app.state.session_factory, app.state.clock, settings)
        if served:
            # What the server process has built so far (modules, routes, models, schemas) lives as
            # long as it does: kept out of the collector's full passes, which otherwise walk all of it
            # every few thousand requests and stall every request in flight meanwhile (the status
            # read's tail latency, bench/README.md). Not in a process that builds many apps (tests).
            gc.collect()
            gc.freeze()
        running = None
        if settings.worker == "on":
            running = asyncio.create_task(app.state.worker.run(), name="worker")
        try:
            yield
        finally:
            if running is not None:  # finish the pass under way and give the leases back
                app.state.worker.stopping.set()
                await running
            else:  # a worker that tests drained may hold an HTTP client
                await app.state.worker.close()
            await engine.dispose()
            metrics.worker_exited()

    app = FastAPI(
        title="Qalyptus partner program",
        version="1.0.0",
        description=(
            "Runs the Qalyptus reseller and affiliate partner program: partner registration and "
            "agreements, scoped API keys, deal registration, signed store webhooks, points, levels, "
            "discounts and commissions. Errors are RFC 9457 `application/problem+json` with a stable "
            "`code`."
        ),
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry layer off: the service traces with app/tracing.py (when
        # OTEL_EXPORTER_OTLP_ENDPOINT is set), and the layer would otherwise look up the process's
        # providers (environment variables included) on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Served by app/routers/api_docs.py with packaged assets, not from a CDN.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url="/docs/oauth2-redirect",
        dependencies=[Depends(reject_unknown_query_parameters)],
        generate_unique_id_function=_operation_id,
        openapi_tags=[
            {"name": "partners", "description": "Registration, profile, status and keys of partners."},
            {"name": "agreements", "description": "Versions of the partner agreement."},
            {"name": "api keys", "description": "Admin and store keys."},
            {"name": "audit", "description": "The append-only audit log."},
            {"name": "partner program", "description": "Registrations, status and ledgers of a partner."},
            {"name": "customers", "description": "The vendor's customers (admin)."},
            {"name": "webhooks", "description": "The store's signed events and their processing."},
            {"name": "pricing", "description": "Reseller prices and discount checks."},
            {"name": "statements", "description": "Quarterly statements, payouts and adjustments (R16)."},
            {
                "name": "payee details",
                "description": "Who a partner is paid as and to which account (the IBAN stored encrypted, answered "
                "masked), and whether it is payable.",
            },
            {"name": "self-billing", "description": "Versions of the self-billing agreement and their acceptances."},
            {
                "name": "payouts",
                "description": "Payout runs (SEPA credit transfers of approved statements) and self-billed invoices.",
            },
            {
                "name": "people",
                "description": "Users of partners and of the vendor with their roles, invitations, sign-in sessions, "
                "password resets, the second factor, notification settings, and the mail log.",
            },
            {"name": "dashboards", "description": "Program-wide figures for internal dashboards."},
            {"name": "directory", "description": "The public partner directory (R18)."},
            {"name": "nfr licences", "description": "Not-for-resale licences (R17)."},
            {"name": "leads", "description": "Leads routed to partners by location (R19)."},
            {"name": "program", "description": "Program terms and settings."},
            {"name": "events", "description": "Domain events: what happened, in order."},
            {"name": "jobs", "description": "The worker's scheduled jobs."},
            {
                "name": "outbound webhooks",
                "description": "Domain events POSTed to subscribers, signed per Standard Webhooks, with retries "
                "and a delivery log.",
            },
            {"name": "health", "description": "Probes for the orchestrator."},
        ],
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.auth_throttle = AuthThrottle()
    app.state.read_cache = ReadCache()
    install_error_handlers(app)
    # Outermost last: the request id is known to every answer and log line, the log and the metrics
    # see the catch-all's 500s, the catch-all sees the limits' errors.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestLimitsMiddleware, settings=settings)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(CatchAllMiddleware)
    # The store's storable webhooks are answered here, past the request id, the log and the metrics;
    # anything else goes on to the catch-all and what it wraps (app/intake.py).
    app.add_middleware(IntakeFastPath)
    # Likewise the happy path of status reads, the most frequent request (app/status_fast_path.py).
    app.add_middleware(StatusFastPath)
    # Inside the log and the metrics, so preflights are seen; outside the 405 a preflight would get.
    if settings.cors_origins:  # none by default: then no layer at all on every request
        app.add_middleware(PublicCorsMiddleware, origins=settings.cors_origins)
    app.add_middleware(ObserveMiddleware)
    app.add_middleware(RequestIdMiddleware)
    traced = tracing.from_environment()  # None unless OTEL_EXPORTER_OTLP_ENDPOINT is set
    if traced is not None:
        traced.instrument_app(app)
    routers = (
        health.router,
        partners.router,
        partner_program.router,
        payee.router,
        customers.router,
        customers.refusals_router,
        customers.imports_router,
        statements.router,
        payouts.router,
        people.router,
        exports.router,
        directory.router,
        leads.router,
        webhooks.router,
        program.router,
        previews.router,
        reviews.router,
        admin.router,
        events.router,
        webhook_subscriptions.router,
        metrics_router.router,
        problems_router.router,
        pages.router,
    )
    # Routing tries routes in the order they were included, so the routes answered most often after
    # the status read (which has a fast path of its own) go first: the public directory and the
    # store's quote. No route of theirs matches a path another route matches (tests/test_status_reads.py),
    # so the order changes no answer; the OpenAPI document keeps the order above.
    served_first = (health.router, directory.router, program.router)
    for router in (*served_first, *(r for r in routers if r not in served_first)):
        app.include_router(router)
    app.mount("/static", StaticFiles(packages=[("app", "static")]), name="static")
    app.add_exception_handler(pages.SignInFirst, _sign_in_first)  # type: ignore[arg-type]
    for refused, handler in list(app.exception_handlers.items()):  # a page's refusal is a page
        if refused is not pages.SignInFirst:
            app.exception_handlers[refused] = pages.answering_pages(handler)
    api_docs.install(app)
    index_routes(app, routers)
    app.openapi = lambda: _problem_openapi(app, _declared_order(app.routes, routers))  # type: ignore[method-assign]
    return app


def create_served_app() -> FastAPI:
    """The app a server process (`partners serve`, each of its workers) runs for its lifetime."""
    return create_app(served=True)
