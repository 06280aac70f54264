"""`/metrics`: request timings by route template, store events by outcome, the parked backlog, failed
authentications, connections in use, the worker's figures, an optional token, and several workers
adding up."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import metrics
from app.db.session import create_engine
from app.domain.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Api
from tests.program import Customer, Program, line, order_event, t

VENV_BIN = Path(sys.executable).parent


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _scrape(client: httpx.AsyncClient, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_timed_by_route_template_and_status(api: Api) -> None:
    partner, key = await api.register()
    before = await _scrape(api.client)
    for _ in range(2):
        assert (await api.client.get(f"/v1/partners/{partner['id']}", headers=api.bearer(key))).status_code == 200
    await api.client.get("/v1/no-such-route/123")
    after = await _scrape(api.client)
    count = "partners_http_request_duration_seconds_count"
    template = {"method": "GET", "route": "/v1/partners/{partner_id}", "status": "200"}
    assert _value(after, count, **template) - _value(before, count, **template) == 2
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert _value(after, count, **unmatched) - _value(before, count, **unmatched) == 1
    # The scrape itself is the one request in flight while it is answered.
    assert _value(after, "partners_http_requests_in_flight") == 1


async def test_store_events_are_counted_by_intake_outcome_and_the_backlog_read_from_the_database(api: Api) -> None:
    program = Program(api)
    before = await _scrape(api.client)
    customer = Customer.new()
    applied = await program.order(customer, [line("desktop", 1, 48000)], placed_at="2026-01-20T09:00:00Z")
    assert applied["receipt"]["status"] == "applied"
    event = order_event(Customer.new(), [line("desktop", 1, 1000)], placed_at=t("2026-01-20T09:00:00Z"))
    assert (await program.send(event, webhook_id="msg_metrics_dup")).json()["status"] == "applied"
    assert (await program.send(event, webhook_id="msg_metrics_dup")).json()["status"] == "duplicate"
    parked = await program.order(
        customer, [line("cloud-premium", 1, 1000)], placed_at="2026-01-20T09:00:00Z", expect=202
    )
    assert parked["receipt"]["status"] == "parked"
    malformed = await program.send({"type": "order.paid", "data": {"order_id": 5}})
    assert malformed.status_code == 422
    after = await _scrape(api.client)
    name = "partners_store_events_total"
    # Counted when the webhook is answered: accepted (then applied or parked by the worker), a
    # duplicate webhook-id, or signed but malformed.
    assert {
        outcome: _value(after, name, outcome=outcome) - _value(before, name, outcome=outcome)
        for outcome in ("accepted", "duplicate", "rejected")
    } == {"accepted": 3, "duplicate": 1, "rejected": 1}
    assert _value(after, "partners_store_events_parked") == 1


async def test_failed_authentications_are_counted_by_route(api: Api) -> None:
    before = await _scrape(api.client)
    await api.client.get("/v1/partners", headers={"Authorization": "Bearer qpa_not_a_key"})
    await api.client.get("/v1/partners")
    await api.client.post("/v1/webhooks/store", content=b"{}", headers={"webhook-id": "x"})
    after = await _scrape(api.client)
    name = "partners_authentication_failures_total"
    for route, failures in (("/v1/partners", 2), ("/v1/webhooks/store", 1)):
        assert _value(after, name, route=route) - _value(before, name, route=route) == failures


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": "scrape-token-0123456789"}])
async def test_the_metrics_token_is_required_when_set(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, api.admin):
        refused = await api.client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["code"] == "metrics_token_required"
        assert refused.headers["www-authenticate"] == "Bearer"
    await _scrape(api.client, Authorization="Bearer scrape-token-0123456789")


async def test_connections_in_use_are_counted_while_checked_out(database_url: str) -> None:
    engine = create_engine(database_url)
    metrics.watch_pool(engine)
    start = metrics.DB_CONNECTIONS_IN_USE._value.get()
    try:
        async with engine.connect() as first, engine.connect() as second:
            assert first is not second
            assert metrics.DB_CONNECTIONS_IN_USE._value.get() - start == 2
        assert metrics.DB_CONNECTIONS_IN_USE._value.get() - start == 0
    finally:
        await engine.dispose()


async def test_the_worker_figures_are_exposed(api: Api) -> None:
    """Job runs and settled store events as the worker counts them; its lag from the oldest event
    still waiting, at the moment of the scrape."""
    program = Program(api)
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    before = await _scrape(api.client)
    event = order_event(c, [line("desktop", 1, 100)], placed_at=t("2026-02-01T10:00:00Z"))
    body = json.dumps(event).encode()
    stamp = str(int(api.clock.now().timestamp()))
    headers = {
        "webhook-id": "lag",
        "webhook-timestamp": stamp,
        "webhook-signature": sign(WEBHOOK_SECRET, "lag", stamp, body),
    }
    assert (await api.client.post("/v1/webhooks/store", content=body, headers=headers)).status_code == 202
    api.clock.advance(seconds=42.5)
    waiting = await _scrape(api.client)
    assert _value(waiting, "partners_worker_lag_seconds") == 42.5
    await api.drain()
    after = await _scrape(api.client)
    assert _value(after, "partners_worker_lag_seconds") == 0
    events = "partners_store_events_total"
    assert _value(after, events, outcome="accepted") - _value(before, events, outcome="accepted") == 1
    assert _value(after, events, outcome="applied") - _value(before, events, outcome="applied") == 1
    runs = "partners_job_runs_total"
    for job in ("terms_taking_effect", "lapses_due", "registration_windows", "prune_idempotency"):
        assert _value(after, runs, task=job, outcome="ok") - _value(before, runs, task=job, outcome="ok") == 1, job
    # Prometheus sets `job` on every series it scrapes: a label of ours by that name would be renamed.
    assert not any(("job", value) in labels for (_, labels) in after for value in ("lapses_due",))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_several_workers_add_up(tmp_path: Path) -> None:
    """Two uvicorn workers: whichever answers /metrics reports the requests both of them served."""
    port, directory = _free_port(), tmp_path / "metrics"
    environment: dict[str, Any] = {
        **os.environ,
        "PARTNERS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/partners.db",
        "PARTNERS_PORT": str(port),
        "PARTNERS_SERVER_PROCESSES": "2",
        "PARTNERS_METRICS_DIR": str(directory),
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [str(VENV_BIN / "partners"), "serve"], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        sent = 1
        # New connections until both workers have served requests (each then has its own file).
        while len(list(directory.glob("histogram_*.db"))) < 2 and sent < 500:
            assert httpx.get(f"{base}/health/live", timeout=10).status_code == 200
            sent += 1
        assert len(list(directory.glob("histogram_*.db"))) == 2
        samples = _samples(httpx.get(f"{base}/metrics", timeout=10).text)
        count = "partners_http_request_duration_seconds_count"
        assert _value(samples, count, method="GET", route="/health/live", status="200") == sent
    finally:
        server.terminate()
        server.wait(timeout=30)
