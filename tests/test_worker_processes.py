"""Workers as real processes: `partners serve` applies store events by itself, and two `partners
worker` processes share the applier — one SIGKILLed in the middle of its work, the service's own
database connections terminated under load — with every accepted event applied exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.domain.webhooks import sign
from tests.conftest import WEBHOOK_SECRET, Api
from tests.databases import POSTGRES_ADMIN_DSN
from tests.program import Customer, Program, line, order_event, t
from tests.servers import stop, wait_until_ready

pytestmark = pytest.mark.slow

PARTNERS = str(Path(sys.executable).parent / "partners")
DEADLINE_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PARTNERS_DATABASE_URL": database_url,
        "PARTNERS_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "PARTNERS_LOG_LEVEL": "warning",
        **extra,
    }


def _signed(event: dict[str, Any], webhook_id: str, now: float) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    timestamp = str(int(now))
    return body, {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(WEBHOOK_SECRET, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def _start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([PARTNERS, "worker"], env=env, stderr=subprocess.DEVNULL, text=True)


def test_serve_on_sqlite_applies_a_store_event_without_drain(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/partners.db"
    env = _env(database_url, PARTNERS_PORT=str(_free_port()), PARTNERS_WORKER_POLL_SECONDS="0.1")
    server = subprocess.Popen([PARTNERS, "serve"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{env['PARTNERS_PORT']}"
    try:
        wait_until_ready(base, server, within=DEADLINE_SECONDS)
        deadline = time.monotonic() + DEADLINE_SECONDS
        key = subprocess.run(
            [PARTNERS, "create-admin-key", "--kind", "store", "--scopes", "store", "--name", "store"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert key.returncode == 0, key.stderr
        event = {"type": "licence.lapsed", "data": {"licence_id": "lic_unknown", "lapsed_at": "2026-06-01T00:00:00Z"}}
        body, headers = _signed(event, "msg_serve", time.time())
        accepted = httpx.post(f"{base}/v1/webhooks/store", content=body, headers=headers, timeout=10)
        assert accepted.status_code == 202, accepted.text
        url = accepted.json()["url"]
        store = {"Authorization": f"Bearer {key.stdout.strip()}"}
        while (stored := httpx.get(f"{base}{url}", headers=store, timeout=10).json())["status"] == "accepted":
            assert time.monotonic() < deadline, "the server's worker never applied the event"
            time.sleep(0.1)
        # Nothing is known of that licence: the worker parked it, with the reason.
        assert (stored["status"], stored["reason_code"]) == ("parked", "unknown_licence")
    finally:
        stop(server)


async def _terminate_own_connections(database_url: str) -> int:
    """Cut every connection to this test's own database but ours (never the whole server)."""
    database = database_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}")
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return len(rows)
    finally:
        await conn.close()


async def _backlog(program: Program) -> int:
    jobs = await program.client.get("/v1/jobs", headers=program.api.admin)
    assert jobs.status_code == 200, jobs.text
    return int(jobs.json()["store_events"]["accepted"])


async def test_two_worker_processes_one_killed_apply_every_event_exactly_once(
    live_api: Api, committing_database_url: str, backend: str
) -> None:
    program = Program(live_api)
    partner = await program.partner()
    customers = [Customer.new() for _ in range(40)]
    for customer in customers:
        await program.register(partner, customer, at="2026-01-10T09:00:00Z")
    program.at("2026-02-01T10:01:00Z")
    orders = [
        order_event(c, [line("server-business", 1 + i % 3, 1000)], placed_at=t("2026-02-01T10:00:00Z"))
        for i, c in enumerate(customers)
    ]
    env = _env(
        committing_database_url,
        PARTNERS_WORKER_LEASE_SECONDS="2",
        PARTNERS_WORKER_BATCH="3",
        PARTNERS_WORKER_POLL_SECONDS="0.05",
    )
    now = program.api.clock.now().timestamp()

    async def deliver(batch: list[tuple[int, dict[str, Any]]]) -> None:
        for i, event in batch:
            body, headers = _signed(event, f"msg_{i}", now)
            for _ in range(20):  # a sender that retries like the store: the same webhook-id
                response = await program.client.post("/v1/webhooks/store", content=body, headers=headers)
                if response.status_code in (200, 202):
                    break
                assert response.status_code == 503, response.text
            else:
                pytest.fail(f"order {i} was never accepted")

    first = _start_worker(env)
    second: subprocess.Popen[str] | None = None
    try:
        # A bounded load arrives while the first worker applies; on Postgres the service's own
        # connections are cut in the middle of it.
        load = asyncio.gather(*(deliver(list(enumerate(orders))[k::4]) for k in range(4)))
        if backend == "postgres":
            await asyncio.sleep(0.2)
            await _terminate_own_connections(committing_database_url)
        await load
        deadline = time.monotonic() + DEADLINE_SECONDS
        while await _backlog(program) > len(orders) // 2:
            assert time.monotonic() < deadline and first.poll() is None, "the first worker applied nothing"
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # in the middle of its work: no chance to release its lease
        first.wait(timeout=10)
        second = _start_worker(env)
        while await _backlog(program) > 0:
            assert time.monotonic() < deadline and second.poll() is None, "the second worker did not take over"
            await asyncio.sleep(0.05)
    finally:
        for process in (first, second):
            if process is not None:
                stop(process)
    listed = await program.client.get("/v1/webhook-events", params={"limit": 200}, headers=program.api.admin)
    statuses = [e["status"] for e in listed.json()["items"]]
    assert sorted(statuses) == ["applied"] * len(orders)
    expected = sum(4 * (1 + i % 3) for i in range(len(orders)))
    assert await program.total_points(partner) == expected
    assert len(await program.points(partner)) == len(orders)


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a process's standard error, each of which must be one JSON object."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    parsed = []
    for one in lines:
        try:
            parsed.append(json.loads(one))
        except json.JSONDecodeError:
            pytest.fail(f"a line that is not JSON: {one!r}")
    return parsed


def test_a_worker_apart_logs_json_and_serves_its_own_metrics(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(
        f"sqlite+aiosqlite:///{tmp_path}/partners.db",
        PARTNERS_LOG_FORMAT="json",
        PARTNERS_LOG_LEVEL="info",
        PARTNERS_WORKER_METRICS_PORT=str(port),
        PARTNERS_WORKER_POLL_SECONDS="0.1",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    worker = subprocess.Popen([PARTNERS, "worker"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        text = ""
        while 'partners_job_runs_total{outcome="ok",task="lapses_due"}' not in text:
            assert worker.poll() is None, "the worker stopped"
            assert time.monotonic() < deadline, f"no job run in the worker's metrics: {text[-2000:]}"
            with contextlib.suppress(httpx.TransportError):
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            time.sleep(0.1)
    finally:
        stop(worker)
    assert worker.stderr is not None
    lines = _json_lines(worker.stderr.read())
    messages = [line["message"] for line in lines]
    assert any(m.startswith("worker running") for m in messages), messages
    assert any(m == f"worker metrics on http://127.0.0.1:{port}/metrics" for m in messages), messages
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)


def test_every_line_of_a_server_in_json_is_json_with_the_client_address(tmp_path: Path) -> None:
    """The start banner, uvicorn's parent and worker processes and the request lines alike."""
    env = _env(
        f"sqlite+aiosqlite:///{tmp_path}/partners.db",
        PARTNERS_LOG_FORMAT="json",
        PARTNERS_LOG_LEVEL="info",
        PARTNERS_PORT=str(_free_port()),
        PARTNERS_WORKER="off",
    )
    server = subprocess.Popen(
        [PARTNERS, "serve", "--workers", "2"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{env['PARTNERS_PORT']}"
    try:
        wait_until_ready(base, server, within=DEADLINE_SECONDS)
        assert httpx.get(f"{base}/v1/partners", timeout=10).status_code == 401
    finally:
        stop(server)
    assert server.stderr is not None
    lines = _json_lines(server.stderr.read())
    messages = [line["message"] for line in lines]
    assert any(m.startswith("serving on http://127.0.0.1:") for m in messages), messages
    assert any(line["logger"].startswith("uvicorn") for line in lines), messages
    requests = [line for line in lines if line["logger"] == "app.request" and line.get("path") == "/v1/partners"]
    assert requests and requests[0]["client"] == "127.0.0.1" and requests[0]["status"] == 401
