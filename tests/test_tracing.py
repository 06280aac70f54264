"""Tracing (OpenTelemetry): a store webhook's request, its SQL, and the worker's span applying the event,
linked to the request; nothing at all unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

Spans go to an in-memory exporter through a provider of the test's own, handed to the instrumentations
(the process-wide provider can be set only once and stays untouched)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app import tracing
from app.main import create_app
from tests.conftest import Api, make_settings
from tests.program import Customer, Program, line, order_event, t
from tests.receiver import serve

OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.start(provider)
    try:
        yield spans
    finally:
        tracing.stop()
        provider.shutdown()


@pytest.fixture
async def connection(exporter: InMemorySpanExporter, connection: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """The conftest's connection, its engine made once tracing has started (so its SQL is traced)."""
    yield connection


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"log_format": "json"}


async def _post(api: Api, event: dict[str, Any], webhook_id: str) -> dict[str, Any]:
    """Deliver a signed event without settling it: the intake's answer."""
    response = await api.deliver(event, webhook_id)
    assert response.status_code == 202, response.text
    return dict(response.json())


def _statement(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("db.statement") or attributes.get("db.query.text") or "")


def _under(span: ReadableSpan, ancestor: ReadableSpan, spans: dict[int, ReadableSpan]) -> bool:
    """Whether `ancestor` is `span`'s parent, or its parent's, and so on."""
    parent = span.parent
    while parent is not None:
        if parent.span_id == ancestor.context.span_id:
            return True
        above = spans.get(parent.span_id)
        parent = above.parent if above is not None else None
    return False


async def test_a_webhook_request_its_sql_and_the_worker_span_applying_it_linked_to_it(
    api: Api, exporter: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    program = Program(api)
    partner = await program.partner()
    customer = Customer.new()
    await program.register(partner, customer, at="2026-01-10T09:00:00Z")
    program.at("2026-01-20T10:00:00Z")
    event = order_event(customer, [line("desktop", 1, 10000)], placed_at=t("2026-01-20T09:00:00Z"), buyer=partner[0])
    exporter.clear()
    capsys.readouterr()

    receipt = await _post(api, event, "msg_traced_1")

    intake = exporter.get_finished_spans()
    [request] = [s for s in intake if s.kind is SpanKind.SERVER]
    assert request.name == "POST /v1/webhooks/store"
    assert (request.attributes or {})["http.route"] == "/v1/webhooks/store"
    by_id = {s.context.span_id: s for s in intake}
    inserts = [s for s in intake if "INSERT INTO webhook_events" in _statement(s)]
    assert len(inserts) == 1
    assert inserts[0].kind is SpanKind.CLIENT
    assert inserts[0].context.trace_id == request.context.trace_id
    assert _under(inserts[0], request, by_id)
    assert all(s.context.trace_id == request.context.trace_id for s in intake)

    # The stored event names the request's span; so does the request's log line.
    context = request.context
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    stored = await api.connection.execute(  # type: ignore[union-attr]
        text("SELECT traceparent FROM webhook_events WHERE id = :id"), {"id": receipt["event_id"]}
    )
    assert stored.scalar_one() == expected
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    [logged] = [x for x in lines if x["logger"] == "app.request" and x["route"] == "/v1/webhooks/store"]
    assert logged["traceparent"] == expected

    exporter.clear()
    assert await api.app.state.worker.apply_store_events() == 1  # the applier's pass alone

    worker = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in worker}
    [applying] = [s for s in worker if s.name == "store_event.apply"]
    assert (applying.attributes or {})["store_event.id"] == receipt["event_id"]
    assert (applying.attributes or {})["store_event.type"] == "order.paid"
    assert (applying.attributes or {})["store_event.status"] == "applied"
    assert [(link.context.trace_id, link.context.span_id) for link in applying.links] == [
        (request.context.trace_id, request.context.span_id)
    ]
    assert applying.context.trace_id != request.context.trace_id  # its own trace, linked: not a child
    [batch] = [s for s in worker if s.name == "store_events.batch"]
    assert applying.parent is not None and applying.parent.span_id == batch.context.span_id
    crediting = [s for s in worker if _statement(s).startswith("INSERT INTO orders")]
    assert crediting and all(_under(s, applying, by_id) for s in crediting)


async def test_a_parked_event_is_applied_under_a_span_saying_so(api: Api, exporter: InMemorySpanExporter) -> None:
    program = Program(api)
    lapse = {
        "type": "licence.lapsed",
        "occurred_at": "2026-03-01T00:00:00Z",
        "data": {"licence_id": "lic_unknown", "lapsed_at": "2026-03-01T00:00:00Z"},
    }
    receipt = await _post(program.api, lapse, "msg_traced_2")
    [request] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    await api.drain(scheduled=False)
    # Parked on the one path (a batch of one), under one span: a park is the event's outcome.
    [applying] = [s for s in exporter.get_finished_spans() if s.name == "store_event.apply"]
    assert (applying.attributes or {})["store_event.status"] == "parked"
    assert (applying.attributes or {})["store_event.id"] == receipt["event_id"]
    assert [link.context.span_id for link in applying.links] == [request.context.span_id]
    assert applying.status.status_code is not StatusCode.ERROR  # a park is the event's outcome, not a failure


async def test_scheduled_jobs_run_under_their_own_spans_and_idle_polls_make_none(
    api: Api, exporter: InMemorySpanExporter
) -> None:
    await api.drain()  # the first pass runs every job that is due
    names = {s.name for s in exporter.get_finished_spans()}
    assert {"job.terms_taking_effect", "job.lapses_due", "job.prune_idempotency"} <= names
    exporter.clear()
    assert await api.drain() == 0  # nothing due: the polls read, untraced
    assert exporter.get_finished_spans() == ()


async def test_each_outbound_delivery_has_a_span_with_its_post_under_it(
    api: Api, exporter: InMemorySpanExporter
) -> None:
    async with serve(api.clock) as receiver:
        response = await api.client.post(
            "/v1/webhook-subscriptions",
            json={"url": receiver.url, "event_types": ["partner.registered"]},
            headers=api.admin,
        )
        assert response.status_code == 201, response.text
        receiver.secrets.append(response.json()["secret"])
        await api.register()
        exporter.clear()
        await api.drain(scheduled=False)
    [delivered] = receiver.received
    spans = exporter.get_finished_spans()
    [sending] = [s for s in spans if s.name == "webhook_delivery.send"]
    assert (sending.attributes or {})["webhook.id"] == delivered.webhook_id
    assert (sending.attributes or {})["webhook_delivery.delivered"] is True
    [post] = [s for s in spans if s.kind is SpanKind.CLIENT and s.name == "POST"]
    assert post.parent is not None and post.parent.span_id == sending.context.span_id
    assert delivered.headers["traceparent"].split("-")[1:3] == [
        f"{post.context.trace_id:032x}",
        f"{post.context.span_id:016x}",
    ]
    assert delivered.verified_with == receiver.secrets  # the signature does not cover the added header


# --- off unless asked for -------------------------------------------------------------------------


def test_tracing_is_on_only_with_an_otlp_endpoint() -> None:
    assert not tracing.enabled({})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})


def test_without_an_endpoint_nothing_is_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    app = create_app(make_settings("sqlite+aiosqlite:///unused.db"))
    assert tracing.active() is None
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert tracing.current_traceparent() is None
    with tracing.span("store_event.apply", linked_to="00-" + "1" * 32 + "-" + "2" * 16 + "-01") as span:
        assert span is trace.INVALID_SPAN


def test_with_an_endpoint_a_provider_is_made_from_the_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setattr(trace, "set_tracer_provider", lambda _provider: None)  # the process's stays unset
    try:
        made = tracing.from_environment()
        assert made is not None and tracing.active() is made
        assert tracing.from_environment() is made  # once per process
        assert isinstance(made.provider, TracerProvider)
        assert made.provider.resource.attributes["service.name"] == "qalyptus-partners"
        app = create_app(make_settings("sqlite+aiosqlite:///unused.db"))
        assert getattr(app, "_is_instrumented_by_opentelemetry", False)
    finally:
        tracing.stop()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "partners-eu")
    try:
        made = tracing.from_environment()
        assert made is not None
        assert isinstance(made.provider, TracerProvider)
        assert made.provider.resource.attributes["service.name"] == "partners-eu"
    finally:
        tracing.stop()
    assert tracing.active() is None
