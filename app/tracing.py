"""Tracing with OpenTelemetry: off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

When on, each process sends its spans over OTLP (HTTP, protobuf) to that endpoint: every HTTP request
(FastAPI), every SQL statement (SQLAlchemy), every outbound webhook call (httpx), and the worker's own
spans: a batch of store events and each event applied, each scheduled job run, each outbound delivery.
A store event accepted by a request keeps that request's span context on its row (a W3C
`traceparent`); the worker's span applying the event links to it, so the intake's trace leads to the
application although the two happen in other transactions, often in other processes.

The standard variables are read as such: `OTEL_SERVICE_NAME` (default `qalyptus-partners`),
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_*` (headers, timeout, a traces-only endpoint),
`OTEL_TRACES_SAMPLER` and its argument, `OTEL_BSP_*`, `OTEL_SDK_DISABLED`, and
`OTEL_PYTHON_FASTAPI_EXCLUDED_URLS` (default here: the health probes and `/metrics`).

Off, nothing is imported beyond the API, nothing is instrumented, and each helper below costs one
`is None` test. Tests start tracing with a provider of their own (`start(provider)`), never the
process-wide one, and `stop()` it afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from sqlalchemy.ext.asyncio import AsyncEngine

DEFAULT_SERVICE_NAME = "qalyptus-partners"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
EXCLUDED_URLS = "/health/,/metrics"
"""Not traced unless `OTEL_PYTHON_FASTAPI_EXCLUDED_URLS` (or `OTEL_PYTHON_EXCLUDED_URLS`) says otherwise:
the probes and the scrapes, which come every few seconds and say nothing about the program."""
_W3C = TraceContextTextMapPropagator()
"""The stored link is always a W3C `traceparent`, whatever `OTEL_PROPAGATORS` picks for HTTP headers."""


class Tracing:
    """What a process traces with: its tracer provider, and what it instrumented with it."""

    def __init__(self, provider: trace.TracerProvider, *, owns_provider: bool) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("app")
        self._owns_provider = owns_provider
        self._undo: list[Callable[[], None]] = []
        self._engines = False

    def instrument_app(self, app: FastAPI) -> None:
        """A server span for every request, named after its route template (`POST /v1/webhooks/store`)."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        from_environment = os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS") or os.environ.get(
            "OTEL_PYTHON_EXCLUDED_URLS"
        )
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            excluded_urls=None if from_environment else EXCLUDED_URLS,
            exclude_spans=["receive", "send"],  # the ASGI messages: two or three spans per request, no news
        )
        self._undo.append(lambda: FastAPIInstrumentor.uninstrument_app(app))

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A client span for every statement run on this engine (an async engine: its sync core).

        Only this engine: the instrumentor's `instrument()` would also patch SQLAlchemy's engine
        factories process-wide, once, for whichever provider came first."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.instrumentation.sqlalchemy.version import __version__
        from opentelemetry.metrics import get_meter
        from opentelemetry.semconv.metrics import MetricInstruments

        instrumentation = "opentelemetry.instrumentation.sqlalchemy"  # the name its own spans carry
        tracer = self.provider.get_tracer(instrumentation, __version__)
        connections = get_meter(instrumentation, __version__).create_up_down_counter(
            name=MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE, unit="connections"
        )
        EngineTracer(tracer, engine.sync_engine, connections)  # type: ignore[no-untyped-call]
        self._engines = True

    def instrument_client(self, client: httpx.AsyncClient) -> None:
        """A client span for every request this client sends (and a `traceparent` header on it). The
        client stays instrumented until it is closed."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def close(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        if self._engines:
            from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

            EngineTracer.remove_all_event_listeners()  # type: ignore[no-untyped-call]
            self._engines = False
        if self._owns_provider:
            shutdown = getattr(self.provider, "shutdown", None)
            if shutdown is not None:
                shutdown()


_active: Tracing | None = None


def active() -> Tracing | None:
    """The process's tracing, or None when it is off."""
    return _active


def start(provider: trace.TracerProvider, *, owns_provider: bool = False) -> Tracing:
    """Trace with this provider from now on (tests: one with an in-memory exporter). The provider is
    handed to each instrumentation; the process-wide one is left as it is."""
    global _active
    if _active is not None:
        raise RuntimeError("tracing has started already; stop() it first")
    _active = Tracing(provider, owns_provider=owns_provider)
    return _active


def stop() -> None:
    """Undo what `start` and the instrumentations did (shutting the provider down when it made it)."""
    global _active
    stopping, _active = _active, None
    if stopping is not None:
        stopping.close()


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for tracing: an OTLP endpoint, and the SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def from_environment() -> Tracing | None:
    """The process's tracing, started on first call when the `OTEL_*` variables ask for it: a tracer
    provider (also made the process-wide one) sending batches to the OTLP endpoint."""
    if _active is not None or not enabled():
        return _active
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # OTEL_EXPORTER_OTLP_*, OTEL_BSP_*
    trace.set_tracer_provider(provider)
    return start(provider, owns_provider=True)


def instrument_engine(engine: AsyncEngine) -> None:
    if _active is not None:
        _active.instrument_engine(engine)


def instrument_client(client: httpx.AsyncClient) -> None:
    if _active is not None:
        _active.instrument_client(client)


def span(
    name: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    linked_to: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    errors: bool = True,
) -> contextlib.AbstractContextManager[Span]:
    """A span around a block of the service's own work, the current span within it; `linked_to`, a
    stored `traceparent`, adds a link to the span that caused the work. `errors=False`: an exception
    raised through it is part of the work's flow (the caller marks a real failure with `failed`), so
    it neither records it nor sets the error status. Off: a span that records nothing."""
    if _active is None:
        return contextlib.nullcontext(trace.INVALID_SPAN)
    links = []
    if linked_to:
        cause = trace.get_current_span(_W3C.extract({"traceparent": linked_to})).get_span_context()
        if cause.is_valid:
            links.append(Link(cause))
    return _active.tracer.start_as_current_span(
        name, kind=kind, attributes=attributes, links=links, record_exception=errors, set_status_on_exception=errors
    )


def failed(span: Span, exc: BaseException) -> None:
    """Mark a span opened with `errors=False` as failed by `exc`."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{exc.__class__.__name__}: {exc}"))


def current_traceparent() -> str | None:
    """The current span's context as a W3C `traceparent` (to store beside work done later), or None."""
    if _active is None:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """No spans from the instrumentations within (an idle worker's polls: two a second, no news)."""
    if _active is None:
        yield
        return
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield
