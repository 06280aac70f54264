"""Fixtures: every database test runs on SQLite and on Postgres.

Each test runs inside a transaction that is rolled back at the end; the app's sessions join it
through savepoints, so the app's own commit and rollback paths run for real. Concurrency tests
get a database of their own that really commits, and a real server on a local port.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.session import create_engine, create_session_factory
from app.domain import api_keys
from app.domain.context import Caller, Context
from app.domain.webhooks import sign
from app.main import create_app
from app.settings import Settings
from app.worker import drain
from tests import databases

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", "postgres"]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
"""A Standard Webhooks secret: base64 after `whsec_`, as the reference library reads it."""
SECRETS_KEY = "rMpqJ1kqBdqg3vzq6dJ0nC2bB1GZXK4fQm0Sm6yGq8A="
"""The Fernet key that seals stored secrets in tests (production refuses to start without one)."""

hypothesis_settings.register_profile("ci", derandomize=True, max_examples=50, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=50, deadline=None)
hypothesis_settings.load_profile("ci" if IN_CI else "dev")


class MovableClock:
    """The app's clock in tests: stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


def watch_applied_together(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the groups of store events the worker applies together from now on, one entry per
    group, in the order they were applied: [1, 1, 1] for three events applied one at a time, [3] for
    three applied in one go.

    The one place that knows how the applier is built (tests that check events were really applied
    together, or one by one, go through it): every event is applied by `apply_batch`, in groups that
    `_apply_rows` applies in one savepoint; a group rolled back (an event that raised) is not counted."""
    from app.domain import webhooks

    sizes: list[int] = []
    rows_of = webhooks._apply_rows

    async def applied_rows(session: Any, now: datetime, rows: Any) -> Any:
        settled, waiters = await rows_of(session, now, rows)
        sizes.append(len(settled))
        return settled, waiters

    monkeypatch.setattr(webhooks, "_apply_rows", applied_rows)
    return sizes


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "webhook_secrets": [SecretStr(WEBHOOK_SECRET)],
        "secrets_key": [SecretStr(SECRETS_KEY)],
        "registration_rate_limit": 10_000,
        "failed_auth_limit": 100_000,
        "migrate_on_start": False,
        "worker": "off",
        "render_invoice_documents": False,  # a test renders them with `documents.settle` when it looks
        "invoice_render_processes": 1,
        "mail": "off",  # a test that reads mail starts its own SMTP server (tests/test_people.py)
        "password_hash_profile": "cheap",
        # Event ids of rolled-back tests leave gaps; nothing runs concurrently in a test's own connection.
        "notify_hole_grace_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)


# --- databases, once per worker ---------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_template() -> str:
    problem = databases.postgres_available()
    if problem:
        message = f"Postgres is not reachable at {databases.POSTGRES_ADMIN_DSN}: {problem}"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return databases.postgres_template()


@pytest.fixture(scope="session")
def sqlite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sqlite")


@pytest.fixture(scope="session")
def sqlite_template(sqlite_dir: Path) -> Path:
    return databases.sqlite_template(sqlite_dir)


@pytest.fixture(scope="session")
def worker_database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """backend -> URL of this worker's migrated database (created lazily)."""
    urls: dict[str, str] = {}
    yield urls
    if "postgres" in urls:
        asyncio.run(databases.drop_postgres(f"partners_w_{databases.WORKER}"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, worker_database: dict[str, str]) -> str:
    if backend not in worker_database:
        if backend == "postgres":
            template = request.getfixturevalue("postgres_template")
            name = f"partners_w_{databases.WORKER}"
            worker_database[backend] = asyncio.run(databases.create_postgres_copy(template, name))
        else:
            template_path: Path = request.getfixturevalue("sqlite_template")
            target = template_path.parent / f"worker_{databases.WORKER}.db"
            worker_database[backend] = databases.sqlite_copy(template_path, target)
    return worker_database[backend]


# --- the app on a rolled-back transaction -----------------------------------------------------


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[AsyncConnection]:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()
    await engine.dispose()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or parametrize) to change the app's settings."""
    return {}


@pytest.fixture
async def app(
    connection: AsyncConnection, database_url: str, clock: MovableClock, settings_overrides: dict[str, Any]
) -> AsyncIterator[Any]:
    factory = create_session_factory(connection, join_transaction_mode="create_savepoint")
    application = create_app(make_settings(database_url, **settings_overrides), clock=clock, session_factory=factory)
    async with application.router.lifespan_context(application):
        yield application


@dataclass
class Api:
    """An HTTP client on the app plus shortcuts for the setup most tests need."""

    client: httpx.AsyncClient
    connection: AsyncConnection | None
    clock: MovableClock
    app: Any = None
    admin_key: str = ""
    _emails: Iterator[int] = field(default_factory=itertools.count)
    together: Together | None = None
    """Set by the `delivery` fixture's `together` mode: store events wait to be applied in one pass."""

    async def drain(self, *, scheduled: bool = True) -> int:
        """Run the app's worker until it has nothing left to do (no test waits for it). Without
        `scheduled`, only what was accepted is applied: the scheduled jobs keep their moments."""
        await self.settle()
        return await drain(self.app.state.worker, scheduled=scheduled)

    async def settle(self) -> None:
        """Apply the store events delivered together and not applied yet (nothing to do otherwise)."""
        if self.together is not None:
            await self.together.flush(self)

    def signed(self, webhook_id: str, body: bytes) -> dict[str, str]:
        """The headers of a store webhook with this body, signed as the store signs it at the clock's time."""
        timestamp = str(int(self.clock.now().timestamp()))
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": sign(WEBHOOK_SECRET, webhook_id, timestamp, body),
            "content-type": "application/json",
        }

    async def deliver(self, event: dict[str, Any], webhook_id: str) -> httpx.Response:
        """Post a store event signed as the store signs it, at the clock's time; not settled."""
        body = json.dumps(event).encode()
        return await self.client.post("/v1/webhooks/store", content=body, headers=self.signed(webhook_id, body))

    async def settled(self, response: httpx.Response, *, expect: int | None = None) -> httpx.Response:
        """A store webhook's answer once the worker has applied what it accepted: the stored event's
        outcome, answered as the route did when it applied events itself (200 applied or duplicate,
        202 parked); any other answer as it came. `expect`: the status that answer must have.

        With events delivered together (`delivery` fixture), an accepted event is not applied here:
        its answer is `Pending` until the next call that settles the queue, and `expect` is checked
        then."""
        if response.status_code != 202 or response.json().get("status") != "accepted":
            assert expect is None or response.status_code == expect, response.text
            return response
        if self.together is not None:
            return await self.together.queue(self, response, expect)
        await self.drain(scheduled=False)
        answer = await self.outcome(response)
        assert expect is None or answer.status_code == expect, answer.text
        return answer

    async def outcome(self, response: httpx.Response) -> httpx.Response:
        """The answer `settled` gives for an accepted event, from the stored event as it is now."""
        stored = await self.client.get(response.json()["url"], headers=self.admin)
        assert stored.status_code == 200, stored.text
        event = stored.json()
        outcome = {k: event[k] for k in ("status", "reason_code", "reason")} | {"event_id": event["id"]}
        return httpx.Response(202 if event["status"] == "parked" else 200, json=outcome, request=response.request)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    @staticmethod
    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def registration(self, **overrides: Any) -> dict[str, Any]:
        n = next(self._emails)
        body: dict[str, Any] = {
            "company": f"Partner {n} GmbH",
            "country": "DE",
            "contact_name": f"Contact {n}",
            "contact_email": f"contact{n}@partner{n}.example",
            "website": f"https://partner{n}.example",
            "languages": ["de", "en"],
            "accepted_agreement_version": "2026-01",
        }
        body.update(overrides)
        return body

    async def register(self, **overrides: Any) -> tuple[dict[str, Any], str]:
        """Register a partner; return its JSON and its key."""
        response = await self.client.post("/v1/partners", json=self.registration(**overrides))
        assert response.status_code == 201, response.text
        body = response.json()
        return body["partner"], body["api_key"]["key"]

    async def issue_key(self, kind: str = "admin", scopes: list[str] | None = None) -> str:
        response = await self.client.post(
            "/v1/api-keys", json={"kind": kind, "name": f"{kind} key", "scopes": scopes}, headers=self.admin
        )
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


class Pending:
    """The answer to a store event delivered together with others, known once they are applied.

    Reading it earlier fails: settle first (`await api.settle()`, or any request the test makes)."""

    def __init__(self, accepted: httpx.Response) -> None:
        self.accepted = accepted
        self.answer: httpx.Response | None = None

    def _settled(self) -> httpx.Response:
        if self.answer is None:
            raise AssertionError(
                "this store event waits to be applied with the others delivered together: "
                "read its answer after `await api.settle()` (or any other request of the test)"
            )
        return self.answer

    @property
    def status_code(self) -> int:
        return self._settled().status_code

    @property
    def text(self) -> str:
        return self._settled().text

    def json(self) -> Any:
        return self._settled().json()


@dataclass
class _Queued:
    accepted: httpx.Response
    pending: Pending
    expect: int | None
    at: datetime


@dataclass
class Together:
    """Store events delivered one after another, then applied in one worker pass at the next
    synchronisation point: any request the test makes other than a delivery, `api.drain()`,
    `api.settle()`, a delivery at an earlier clock than the queued ones, and the test's end.

    They are applied at the clock of the last delivery (the clock a test moves before a request
    does not change when they apply), by a worker whose batch holds them all; that one pass must
    settle them all. `groups` holds, per synchronisation, the sizes of the groups the applier
    applied together (`watch_applied_together`)."""

    applied: list[int]
    queued: list[_Queued] = field(default_factory=list)
    groups: list[tuple[int, list[int]]] = field(default_factory=list)
    """(events queued, group sizes) for each synchronisation."""
    flushing: bool = False

    async def queue(self, api: Api, accepted: httpx.Response, expect: int | None) -> Any:
        now = api.clock.now()
        if self.queued and now < max(q.at for q in self.queued):
            await self.flush(api)  # delivered at an earlier moment: what was queued applies first
        pending = Pending(accepted)
        self.queued.append(_Queued(accepted, pending, expect, now))
        return pending

    async def before_request(self, api: Api, request: httpx.Request) -> None:
        if not self.flushing and not (request.method == "POST" and request.url.path == "/v1/webhooks/store"):
            await self.flush(api)

    async def flush(self, api: Api) -> None:
        if self.flushing or not self.queued:
            return
        queued, self.queued = self.queued, []
        worker = api.app.state.worker
        batch, now = worker.settings.worker_batch, api.clock.at
        self.flushing = True
        try:
            api.clock.at = max(q.at for q in queued)
            worker.settings.worker_batch = max(batch, len(queued))
            first = len(self.applied)
            settled = await worker.tick(scheduled=False)  # one pass
            assert settled >= len(queued), f"one pass settled {settled} of {len(queued)} events delivered together"
            await drain(worker, scheduled=False)  # what waited for them (parked refunds, lapses)
            self.groups.append((len(queued), self.applied[first:]))
            for q in queued:
                q.pending.answer = await api.outcome(q.accepted)
        finally:
            worker.settings.worker_batch, api.clock.at = batch, now
            self.flushing = False
        wrong = [
            f"{q.accepted.request.content.decode()[:300]}: expected {q.expect}, got {q.pending.answer.text}"
            for q in queued
            if q.expect is not None and q.pending.answer is not None and q.pending.answer.status_code != q.expect
        ]
        assert wrong == [], "store events delivered together, applied:\n" + "\n".join(wrong)


DELIVERY_CALLS = re.compile(r"\.(order|refund|lapse|send|settled|deliver)\(")


def _delivers(function: Any, seen: set[str] | None = None) -> bool:
    """Whether a test (or a helper of its module it calls) delivers store events, read from its source."""
    seen = set() if seen is None else seen
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    if DELIVERY_CALLS.search(source):
        return True
    module = inspect.getmodule(function)
    for name in re.findall(r"\b(_?[a-z]\w*)\(", source):
        helper = getattr(module, name, None)
        if name not in seen and inspect.isfunction(helper) and helper.__module__ == function.__module__:
            seen.add(name)
            if _delivers(helper, seen):
                return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that uses the `delivery` fixture and delivers store events runs both ways."""
    if "delivery" in metafunc.fixturenames and _delivers(metafunc.function):
        metafunc.parametrize("delivery", ["alone", "together"], indirect=True)


@pytest.fixture
async def delivery(request: pytest.FixtureRequest, api: Api, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """How the store events a test delivers are applied: `alone`, each one before the test goes on
    (what `Api.settled` does), or `together`: delivered one after another, then applied in one
    worker pass when the test next looks (`Together`). A test that delivers store events and uses
    this fixture (through its module's `program` fixture) runs both ways."""
    mode = str(getattr(request, "param", "alone"))
    if mode == "together":
        together = Together(applied=watch_applied_together(monkeypatch))
        api.together = together

        async def hook(request: httpx.Request) -> None:
            await together.before_request(api, request)

        api.client.event_hooks["request"] = [*api.client.event_hooks["request"], hook]
    yield mode
    await api.settle()


async def _first_admin_key(factory: Any, now: datetime) -> str:
    async with factory.begin() as session:
        issued = await api_keys.issue(
            session, Context(caller=Caller(kind="cli"), now=now), kind="admin", name="test admin"
        )
        return issued.plaintext


@pytest.fixture
async def api(app: Any, connection: AsyncConnection, clock: MovableClock) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        key = await _first_admin_key(app.state.session_factory, clock.now())
        yield Api(client=client, connection=connection, clock=clock, app=app, admin_key=key)


# --- a database that really commits, behind a real server ---------------------------------------

_fresh_counter = itertools.count()


@pytest.fixture
def committing_database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A freshly migrated database of this test's own; every commit is real."""
    if backend == "postgres":
        template = request.getfixturevalue("postgres_template")
        name = f"partners_c_{databases.WORKER}_{os.getpid()}_{next(_fresh_counter)}"
        yield asyncio.run(databases.create_postgres_copy(template, name))
        asyncio.run(databases.drop_postgres(name))
    else:
        template_path: Path = request.getfixturevalue("sqlite_template")
        target = template_path.parent / f"fresh_{databases.WORKER}_{next(_fresh_counter)}.db"
        yield databases.sqlite_copy(template_path, target)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def live_settings_overrides() -> dict[str, Any]:
    """Settings of the app behind `live_api`."""
    return {}


@pytest.fixture
def live_worker_settings() -> dict[str, Any]:
    return {"worker": "on", "worker_poll_seconds": 0.02}


@pytest.fixture
async def live_worker_api(
    committing_database_url: str, clock: MovableClock, live_worker_settings: dict[str, Any]
) -> AsyncIterator[Api]:
    """`live_api` with the in-process worker running, as `partners serve` runs it."""
    async for api in _live(committing_database_url, clock, live_worker_settings):
        yield api


@pytest.fixture
async def live_api(
    committing_database_url: str, clock: MovableClock, live_settings_overrides: dict[str, Any]
) -> AsyncIterator[Api]:
    """The app served by uvicorn on a free local port; requests through real sockets run at once."""
    async for api in _live(committing_database_url, clock, live_settings_overrides):
        yield api


async def _live(database_url: str, clock: MovableClock, overrides: dict[str, Any]) -> AsyncIterator[Api]:
    application = create_app(make_settings(database_url, **overrides), clock=clock)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
        key = await _first_admin_key(application.state.session_factory, clock.now())
        yield Api(client=client, connection=None, clock=clock, app=application, admin_key=key)
    server.should_exit = True
    await task
    sock.close()
