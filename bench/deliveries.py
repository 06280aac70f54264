"""What the deliveries scenario (outbound webhooks, issue 12) needs besides the service: the receiver's
process, an admin key and subscription, and the partner requests whose domain events are delivered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.seed import Target
from bench.tools import log_tail, partners_cli, start_until_ready, stop_process
from bench.traffic import raw_request

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
EVENT_TYPE = "registration.created"
"""The type the benchmark's subscription asks for: one event per customer registration."""


def _call(
    method: str, url: str, *, key: str | None = None, body: dict[str, Any] | None = None, timeout: float = 30
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - 127.0.0.1, built here
    if data is not None:
        request.add_header("content-type", "application/json")
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw) if raw else None
        except ValueError:
            return error.code, raw.decode(errors="replace")


def create_admin_key(env: dict[str, str], name: str) -> str:
    """A new admin key, made as an operator would: `partners create-admin-key` (printed once)."""
    result = partners_cli(["create-admin-key", "--name", name], env=env, timeout=60)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"partners create-admin-key failed ({result.returncode}): {result.stderr[-1000:]}")
    return lines[-1].strip()


def create_store_key(base_url: str, admin_key: str, name: str) -> str:
    """A new store key (`POST /v1/api-keys`, kind `store`), as an admin makes the web store's."""
    status, answer = _call("POST", f"{base_url}/v1/api-keys", key=admin_key, body={"kind": "store", "name": name})
    if status != 201:
        raise RuntimeError(f"POST /v1/api-keys answered {status}: {answer}")
    return str(answer["key"])


@dataclass(frozen=True)
class Subscription:
    id: str
    secret: str
    url: str


def subscribe(base_url: str, admin_key: str, target_url: str) -> Subscription:
    """An admin subscription of every partner's `registration.created` events to the receiver."""
    status, answer = _call(
        "POST",
        f"{base_url}/v1/webhook-subscriptions",
        key=admin_key,
        body={"url": target_url, "event_types": [EVENT_TYPE], "description": "load benchmark receiver"},
    )
    if status != 201 or not isinstance(answer, dict):
        raise RuntimeError(f"the subscription was refused ({status}): {answer}")
    return Subscription(str(answer["id"]), str(answer["secret"]), target_url)


def unsubscribe(base_url: str, admin_key: str, subscription: Subscription) -> None:
    status, answer = _call("DELETE", f"{base_url}/v1/webhook-subscriptions/{subscription.id}", key=admin_key)
    if status not in (200, 204, 404):
        raise RuntimeError(f"the subscription could not be deleted ({status}): {answer}")


class ReceiverProcess:
    """bench/receiver.py in a process (and session) of its own, stopped by its PID."""

    def __init__(self, port: int, secret: str, log_path: Path, *, verify_every: int = 1) -> None:
        self.port, self.secret, self.log_path, self.verify_every = port, secret, log_path, verify_every
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ReceiverProcess:
        command = [sys.executable, str(BENCH_DIR / "receiver.py"), "--port", str(self.port)]
        command += ["--verify-every", str(self.verify_every)]
        env = {**os.environ, "BENCH_RECEIVER_SECRET": self.secret}
        self.process = start_until_ready(
            command,
            env=env,
            log_path=self.log_path,
            ready=lambda: self.count() is not None,
            what="the receiver",
            timeout=30,
            poll=0.05,
        )
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def log_tail(self) -> str:
        return log_tail(self.log_path, 2000)

    def count(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/_bench/count", timeout=10) as answer:  # noqa: S310
            return dict(json.loads(answer.read()))

    def records(self) -> list[tuple[str, float, bool | None]]:
        with urllib.request.urlopen(f"{self.url}/_bench/records", timeout=60) as answer:  # noqa: S310
            return [(str(i), float(t), v) for i, t, v in json.loads(answer.read())]

    def stop(self) -> None:
        stop_process(self.process)


def registration_requests(*, host: str, targets: Sequence[Target], prefix: str, count: int) -> list[bytes]:
    """`count` customer registrations by the seeded partners in turn, each a new company with a
    domain of its own (R05's strong identifier; never seen before, so R06 lets it through): each
    commits one `registration.created` domain event."""
    requests = []
    for n in range(count):
        target = targets[n % len(targets)]
        domain = f"{prefix}-{n}.example"
        body = json.dumps(
            {
                "company": f"Prospect {prefix} {n} SA",
                "country": "FR",
                "contact_name": "Marie Curie",
                "contact_email": f"it@{domain}",
                "domain": domain,
            }
        ).encode()
        headers = [("Authorization", f"Bearer {target.key}"), ("Content-Type", "application/json")]
        requests.append(raw_request("POST", f"/v1/partners/{target.partner_id}/registrations", host, headers, body))
    return requests


def record_events(
    database_url: str, partners: Sequence[uuid.UUID], rate: float, duration: float, connections: int
) -> dict[str, float]:
    """bench/event_sender.py in a process of its own: `registration.created` events written at `rate`
    per second for `duration` seconds; what it did (`sent`, `duration_s`, `late`)."""
    command = [sys.executable, str(BENCH_DIR / "event_sender.py"), "--rate", str(rate), "--duration", str(duration)]
    command += ["--connections", str(connections)]
    for partner in partners[:50]:
        command += ["--partner", str(partner)]
    env = {**os.environ, "PARTNERS_DATABASE_URL": database_url}
    result = subprocess.run(  # noqa: S603 - our own script
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=duration + 120, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"the event sender failed ({result.returncode}): {result.stderr[-2000:]}")
    return {k: float(v) for k, v in json.loads(lines[-1]).items()}


def first_arrivals(records: Sequence[tuple[str, float, bool | None]]) -> dict[str, float]:
    """Each `webhook-id`'s first arrival (delivery is at least once: a retry arrives again)."""
    first: dict[str, float] = {}
    for webhook_id, arrived, _verified in records:
        if webhook_id not in first or arrived < first[webhook_id]:
            first[webhook_id] = arrived
    return first
