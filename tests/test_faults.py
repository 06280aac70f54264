"""A fault run, bounded (about a minute): signed webhooks at concurrency 16 from a sender that
retries like the store (same webhook-id), while the service's connections to its database are
terminated several times and one uvicorn worker is killed. Then: 0 lost, 0 doubled, 0 answers 500,
every 2xx committed.

Postgres only: the faults are Postgres's (`pg_terminate_backend`, limited to the test's own
database). Restart errors of the server itself are injected in test_hardening, never caused here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.domain.webhooks import sign
from tests.conftest import WEBHOOK_SECRET
from tests.program import Customer, line, order_event
from tests.servers import stop, wait_until_ready

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
ORDERS = 240
CONCURRENCY = 16
TERMINATIONS = 4
DEADLINE_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def service(backend: str, committing_database_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    env = {
        **os.environ,
        "PARTNERS_ENVIRONMENT": "test",
        "PARTNERS_DATABASE_URL": committing_database_url,
        "PARTNERS_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "PARTNERS_MIGRATE_ON_START": "false",
        "PARTNERS_DB_POOL_SIZE": "4",
        "PARTNERS_LOG_LEVEL": "error",
        # Each server process runs a worker; the one killed may hold the applier's lease.
        "PARTNERS_WORKER_LEASE_SECONDS": "3",
        "PARTNERS_WORKER_POLL_SECONDS": "0.05",
    }
    env.pop("FORWARDED_ALLOW_IPS", None)
    process = subprocess.Popen(
        [str(VENV_BIN / "partners"), "serve", "--port", str(port), "--workers", "2", "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process)
        yield base, process
    finally:
        stop(process)


def _workers(process: subprocess.Popen[str]) -> list[int]:
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return [
        int(pid)
        for pid in children
        if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    ]


class StoreSender:
    """Sends each event until a 2xx, as the store does: same webhook-id, re-signed, after a pause."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.answers: Counter[int] = Counter()
        self.transport_errors = 0
        self.acknowledged: dict[str, int] = {}

    async def deliver(self, webhook_id: str, body: bytes, give_up_at: float) -> None:
        pause = 0.05
        while time.monotonic() < give_up_at:
            timestamp = str(int(time.time()))
            headers = {
                "webhook-id": webhook_id,
                "webhook-timestamp": timestamp,
                "webhook-signature": sign(WEBHOOK_SECRET, webhook_id, timestamp, body),
                "content-type": "application/json",
            }
            try:
                response = await self.client.post("/v1/webhooks/store", content=body, headers=headers)
            except httpx.TransportError:
                self.transport_errors += 1
            else:
                self.answers[response.status_code] += 1
                if 200 <= response.status_code < 300:
                    self.acknowledged[webhook_id] = response.status_code
                    return
                if response.status_code < 500 and response.status_code != 429:
                    raise AssertionError(f"{webhook_id}: {response.status_code} {response.text}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


async def wait_until_processed(dsn: str, order_ids: list[str], give_up_at: float) -> None:
    """Until every order has reached the ledger. Applied in the request today; with intake that
    answers 202 and a worker that applies, this is the one place that waits for the worker."""
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            done = await conn.fetchval(
                "SELECT count(DISTINCT order_id) FROM money_entries WHERE order_id = ANY($1::text[])", order_ids
            )
            if done == len(order_ids) or time.monotonic() > give_up_at:
                return
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def _terminate_connections(dsn: str, times: int, every: float) -> int:
    """pg_terminate_backend on the service's connections to this test's own database only."""
    terminated = 0
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(times):
            await asyncio.sleep(every)
            terminated += await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    finally:
        await conn.close()
    return terminated


@pytest.mark.parametrize("backend", ["postgres"])
async def test_webhooks_survive_terminated_connections_and_a_killed_worker(
    service: tuple[str, subprocess.Popen[str]], committing_database_url: str
) -> None:
    base, process = service
    dsn = committing_database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    give_up_at = time.monotonic() + DEADLINE_SECONDS
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=20) as client:
        # A partner, its registered customer, and a first order that establishes the relationship.
        registration = {
            "company": "Fault Run GmbH",
            "country": "DE",
            "contact_name": "Ops",
            "contact_email": "ops@fault-run.example",
            "accepted_agreement_version": "2026-01",
        }
        created = await client.post("/v1/partners", json=registration)
        assert created.status_code == 201, created.text
        partner_key = created.json()["api_key"]["key"]
        partner_id = created.json()["partner"]["id"]
        customer = Customer.new("Faulty")
        registered = await client.post(
            f"/v1/partners/{partner_id}/registrations",
            json=customer.registration(),
            headers={"Authorization": f"Bearer {partner_key}"},
        )
        assert registered.status_code == 201, registered.text
        placed_at = datetime.fromisoformat(registered.json()["registered_at"].replace("Z", "+00:00"))
        placed_at += timedelta(seconds=1)
        # An order placed in the future is parked: send them once their moment has passed.
        await asyncio.sleep(max(0.0, (placed_at + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()))
        events = {
            f"msg_fault_{i}": order_event(
                customer,
                [line("desktop", 1, 10000, line_id=f"fault_{i}")],
                placed_at=placed_at,
                order_id=f"ord_fault_{i}",
            )
            for i in range(ORDERS)
        }
        sender = StoreSender(client)
        first_id, first_event = next(iter(events.items()))
        await sender.deliver(first_id, json.dumps(first_event).encode(), give_up_at)

        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for webhook_id, event in list(events.items())[1:]:
            queue.put_nowait((webhook_id, json.dumps(event).encode()))

        async def lane() -> None:
            while not queue.empty():
                webhook_id, body = queue.get_nowait()
                await sender.deliver(webhook_id, body, give_up_at)

        async def kill_a_worker() -> int:
            await asyncio.sleep(1.5)
            victim = _workers(process)[0]
            os.kill(victim, signal.SIGKILL)
            return victim

        results = await asyncio.gather(
            *(lane() for _ in range(CONCURRENCY)),
            _terminate_connections(dsn, TERMINATIONS, 0.7),
            kill_a_worker(),
        )
        terminated, victim = results[-2], results[-1]
        sent_in = time.monotonic() - (give_up_at - DEADLINE_SECONDS)
        await wait_until_processed(dsn, [str(e["data"]["order_id"]) for e in events.values()], give_up_at)

    print(
        f"answers {dict(sender.answers)}, transport errors {sender.transport_errors}, terminated {terminated}, "
        f"sent in {sent_in:.1f} s, processed in {time.monotonic() - (give_up_at - DEADLINE_SECONDS):.1f} s"
    )
    assert victim > 0 and terminated > 0
    assert sender.answers[500] == 0, sender.answers
    assert set(sender.acknowledged) == set(events), f"lost: {len(events) - len(sender.acknowledged)}"
    conn = await asyncpg.connect(dsn)
    try:
        stored = Counter(
            r["webhook_id"]
            for r in await conn.fetch("SELECT webhook_id FROM webhook_events WHERE webhook_id LIKE 'msg_fault_%'")
        )
        per_order = Counter(
            r["order_id"]
            for r in await conn.fetch("SELECT order_id FROM money_entries WHERE order_id LIKE 'ord_fault_%'")
        )
        orders = await conn.fetchval("SELECT count(*) FROM orders WHERE order_id LIKE 'ord_fault_%'")
    finally:
        await conn.close()
    # Every acknowledged webhook is stored exactly once, and every order is in the ledger exactly once.
    assert set(stored) == set(sender.acknowledged) and set(stored.values()) == {1}
    assert orders == ORDERS
    assert set(per_order) == {str(e["data"]["order_id"]) for e in events.values()}
    assert set(per_order.values()) == {1}
