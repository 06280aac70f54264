"""The service's Prometheus metrics, and the small functions the rest of the code calls to record them.

Several uvicorn workers are several processes: `partners serve` points `PROMETHEUS_MULTIPROC_DIR` at
a fresh directory before any worker starts, each worker writes its figures there, and `/metrics`
(whichever worker answers it) adds up every worker's files. Without that variable (tests, a single
process embedded elsewhere) the figures live in this process's default registry.

Labels are bounded: a route is its template (`/v1/partners/{partner_id}`), never the raw path, and a
request no route matched is `unmatched`.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Scope

from app.request_log import route_template

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"

REQUEST_DURATION = Histogram(
    "partners_http_request_duration_seconds",
    "Time from receiving a request to the end of its answer, by route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS_IN_FLIGHT = Gauge(
    "partners_http_requests_in_flight",
    "Requests being answered now, all workers together.",
    multiprocess_mode="livesum",
)
STORE_EVENTS = Counter(
    "partners_store_events_total",
    "Store webhook events received, by outcome: accepted, duplicate (webhook-id seen before), rejected (malformed).",
    ["outcome"],
)
PARKED_BACKLOG = Gauge(
    "partners_store_events_parked",
    "Store events parked and waiting (read from the database when /metrics is scraped).",
    multiprocess_mode="mostrecent",
)
AUTHENTICATION_FAILURES = Counter(
    "partners_authentication_failures_total",
    "Requests answered 401: missing or bad API key, bad webhook signature or metrics token, by route.",
    ["route"],
)
DB_CONNECTIONS_IN_USE = Gauge(
    "partners_db_connections_in_use",
    "Database connections checked out of the pools now, all workers together.",
    multiprocess_mode="livesum",
)
WORKER_LAG = Gauge(
    "partners_worker_lag_seconds",
    "Age of the oldest work waiting for the background worker.",
    multiprocess_mode="mostrecent",
)
# `task`, not `job`: Prometheus sets `job` on every scraped series itself, and a clash renames ours.
JOB_RUNS = Counter("partners_job_runs_total", "Background job runs, by job and outcome.", ["task", "outcome"])
DELIVERIES = Counter(
    "partners_deliveries_total",
    "Outbound webhook delivery attempts, by how they settled: delivered, retrying (due again later), "
    "failed (given up).",
    ["outcome"],
)
OUTBOUND_BACKLOG = Gauge(
    "partners_outbound_backlog",
    "Outbound webhook deliveries waiting to be sent (pending or being sent; read when /metrics is scraped).",
    multiprocess_mode="mostrecent",
)


# --- what the rest of the code calls ------------------------------------------------------------


def store_event(outcome: str, count: int = 1) -> None:
    """Store events received, with what became of them: at intake `accepted`, `duplicate`, `rejected`;
    as the worker settles them `applied`, `parked`, `duplicate`, `apply_failed`."""
    STORE_EVENTS.labels(outcome=outcome).inc(count)


def parked_backlog(count: int) -> None:
    PARKED_BACKLOG.set(count)


def authentication_failed(route: str | None) -> None:
    AUTHENTICATION_FAILURES.labels(route=route or UNMATCHED).inc()


def job_run(job: str, outcome: str) -> None:
    """One run of a background job (`sweep`, `relay`, ...) and how it ended (`ok`, `failed`, ...)."""
    JOB_RUNS.labels(task=job, outcome=outcome).inc()


def delivery(outcome: str) -> None:
    """One outbound delivery attempt and how it settled (`delivered`, `retrying`, `failed`)."""
    DELIVERIES.labels(outcome=outcome).inc()


def outbound_backlog(count: int) -> None:
    OUTBOUND_BACKLOG.set(count)


def worker_lag(seconds: float) -> None:
    """The age of the oldest pending work, as the worker last saw it (0 when nothing waits)."""
    WORKER_LAG.set(seconds)


def watch_pool(engine: AsyncEngine) -> None:
    """Count the engine's connections while they are checked out."""

    def checked_out(*_args: Any) -> None:
        DB_CONNECTIONS_IN_USE.inc()

    def checked_in(*_args: Any) -> None:
        DB_CONNECTIONS_IN_USE.dec()

    event.listen(engine.sync_engine, "checkout", checked_out)
    event.listen(engine.sync_engine, "checkin", checked_in)


# --- serving them ---------------------------------------------------------------------------------


def multiprocess_directory() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


def worker_exited(pid: int | None = None) -> None:
    """A worker stops: its share of the live gauges (in flight, connections) stops counting."""
    if multiprocess_directory():
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


def registry() -> CollectorRegistry:
    """Every worker process's figures when they share a directory; this process's otherwise."""
    if multiprocess_directory():
        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
        return shared
    return REGISTRY


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of every worker's figures, and its media type."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve_apart(port: int, host: str) -> None:
    """`/metrics` on a port of its own, from a thread: for `partners worker`, which serves no HTTP."""
    start_http_server(port, addr=host, registry=registry())


def request_started() -> None:
    REQUESTS_IN_FLIGHT.inc()


def request_answered(scope: Scope, status: int, seconds: float) -> None:
    """An HTTP request answered: its duration by route template and status; a refused key; the
    store event it accepted (counted only once the answer is not an error)."""
    REQUESTS_IN_FLIGHT.dec()
    route = route_template(scope)
    REQUEST_DURATION.labels(method=scope["method"], route=route or UNMATCHED, status=str(status)).observe(seconds)
    if status == 401:
        authentication_failed(route)
    outcome = scope.get("state", {}).get("store_event_outcome")
    if outcome is not None and status < 500:
        store_event(outcome)
