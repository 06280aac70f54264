"""A `partners worker` process SIGKILLed while a delivery is in flight: another worker sends it again,
with the same `webhook-id`, once the dead worker's claim has expired."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.domain import subscriptions
from app.worker import Worker, drain
from tests.conftest import SECRETS_KEY, WEBHOOK_SECRET, Api, MovableClock
from tests.receiver import serve

pytestmark = pytest.mark.slow

PARTNERS = str(Path(sys.executable).parent / "partners")


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([PARTNERS, "worker"], env=env, stderr=subprocess.PIPE)


@pytest.fixture
def clock() -> MovableClock:
    """The worker process signs with the wall clock: the service's clock starts there too."""
    return MovableClock(datetime.now(UTC).replace(microsecond=0))


async def test_a_worker_process_killed_mid_delivery_is_taken_over_with_the_same_webhook_id(
    live_api: Api, committing_database_url: str
) -> None:
    api = live_api
    async with serve(api.clock) as receiver:
        made = await api.client.post(
            "/v1/webhook-subscriptions",
            json={"url": receiver.url, "event_types": ["partner.registered"]},
            headers=api.admin,
        )
        assert made.status_code == 201, made.text
        receiver.secrets.append(made.json()["secret"])
        held = receiver.hold = asyncio.Event()
        partner, _ = await api.register()
        env = {
            **os.environ,
            "PARTNERS_ENVIRONMENT": "development",
            "PARTNERS_DATABASE_URL": committing_database_url,
            "PARTNERS_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "PARTNERS_SECRETS_KEY": SECRETS_KEY,  # the key the service sealed the subscription's secret with
            "PARTNERS_MIGRATE_ON_START": "false",
            "PARTNERS_WORKER_POLL_SECONDS": "0.05",
            "PARTNERS_LOG_LEVEL": "warning",
        }
        process = _start_worker(env)
        try:
            try:
                await asyncio.wait_for(receiver.arrived.wait(), timeout=60)
            except TimeoutError:
                process.kill()
                _, err = process.communicate(timeout=10)
                pytest.fail(f"the worker process sent nothing within 60 s:\n{err.decode()[-4000:]}")
            process.send_signal(signal.SIGKILL)  # mid-call: its claim stays, nothing of the attempt is recorded
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        held.set()
        survivor = Worker(api.app.state.session_factory, api.clock, api.app.state.settings, name="survivor")
        await drain(survivor)
        assert len(receiver.received) == 1  # the dead worker's claim still holds
        # The process claimed by the wall clock, some seconds after this test's clock was set.
        claimed_until = datetime.now(UTC) + subscriptions.CLAIM_FOR
        api.clock.advance(seconds=(claimed_until - api.clock.now()).total_seconds() + 1)
        await drain(survivor)
        await survivor.close()
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id
    assert first.verified_with and second.verified_with
    assert first.json == second.json and first.json["data"]["partner_id"] == partner["id"]
    log = await api.client.get(f"/v1/webhook-subscriptions/{made.json()['id']}/deliveries", headers=api.admin)
    (delivery,) = log.json()["items"]
    assert delivery["status"] == "delivered" and [a["status_code"] for a in delivery["attempts"]] == [200]
