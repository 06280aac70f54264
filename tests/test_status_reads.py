"""Status reads at the stack's ceiling (issue 25): what the status read takes from structures the
writers keep, and the in-process caches' bound."""

from __future__ import annotations

import gc
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import text, update

from app import status_fast_path
from app.db import read_cache
from app.db.tables import ApiKey
from app.domain import status as status_domain
from app.main import create_app
from app.routers import directory as directory_routes
from app.routers import program as program_routes
from tests.conftest import WEBHOOK_SECRET, Api, make_settings
from tests.program import Customer, Program, line, t
from tests.servers import stop, wait_until_ready


@pytest.fixture
def program(api: Api, delivery: str) -> Program:
    """Store events the test delivers are applied one by one, or together (`delivery`: both ways)."""
    return Program(api)


async def _standing_drift(api: Api) -> list[Any]:
    """Licences whose kept `standing_points` differ from the sum of their points entries."""
    assert api.connection is not None
    rows = await api.connection.execute(
        text(
            "SELECT l.licence_id, l.standing_points, "
            "COALESCE((SELECT SUM(p.points) FROM points_entries p WHERE p.licence_id = l.licence_id), 0) "
            "FROM licences l"
        )
    )
    return [tuple(r) for r in rows if r[1] != r[2]]


async def test_r03_a_licences_standing_points_follow_its_entries_through_lapse_renewal_and_refund(
    program: Program, api: Api
) -> None:
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-01T09:00:00Z")
    order = await program.order(
        c,
        [
            line("server-business", 3, 300000, line_id="sb", licence_id="lic-sb", term_end=t("2026-07-01T00:00:00Z")),
            line("desktop", 2, 0, licence_id="lic-d", term_end=t("2026-03-01T00:00:00Z")),
        ],
        placed_at="2026-01-20T09:00:00Z",
        buyer=p[0],
    )
    assert await _standing_drift(api) == []
    program.at("2026-02-01T00:00:00Z")
    assert (await program.status(p))["points_at_risk"] == 2  # lic-d ends within 60 days
    order_id = order["event"]["data"]["order_id"]
    await program.refund(order_id, [("sb", 100000)], at="2026-02-02T09:00:00Z")  # one licence back
    await program.lapse("lic-d", at="2026-03-01T00:00:00Z")
    assert await _standing_drift(api) == []
    program.at("2026-05-15T00:00:00Z")
    status = await program.status(p)
    assert status["points_at_risk"] == 8  # lic-sb, two licences left; lic-d lapsed
    await program.order(
        c,
        [line("desktop", 2, 0, kind="renewal", licence_id="lic-d", term_end=t("2027-03-01T00:00:00Z"))],
        placed_at="2026-05-16T00:00:00Z",
        buyer=p[0],
    )
    assert await _standing_drift(api) == []
    assert (await program.status(p))["points_at_risk"] == 8


# --- the process's memory of keys and terms (app/db/read_cache.py) ------------------------------


async def _revoke_elsewhere(api: Api, partner_id: str) -> None:
    """Revoke the partner's keys as another process would: straight in the database."""
    assert api.connection is not None
    keys = ApiKey.__table__
    await api.connection.execute(
        update(keys).where(keys.c.partner_id == uuid.UUID(partner_id)).values(revoked_at=api.clock.now())
    )


class FakeMonotonic:
    """The cache's own clock (real seconds, which the test's MovableClock does not move)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_key_revoked_elsewhere_is_refused_once_the_process_checks_within_its_bound(api: Api) -> None:
    monotonic = FakeMonotonic()
    api.app.state.read_cache = read_cache.ReadCache(monotonic=monotonic)
    partner, key = await api.register()
    url = f"/v1/partners/{partner['id']}/status"
    assert (await api.client.get(url, headers=api.bearer(key))).status_code == 200
    # Another process (or the CLI) revokes it: this process learns of it from the version row only.
    assert api.connection is not None
    await _revoke_elsewhere(api, partner["id"])
    monotonic.now += read_cache.CHECK_SECONDS / 2
    assert (await api.client.get(url, headers=api.bearer(key))).status_code == 200  # held, within the bound
    monotonic.now += read_cache.CHECK_SECONDS / 2
    refused = await api.client.get(url, headers=api.bearer(key))
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_api_key"


async def test_no_request_uses_what_the_process_holds_past_the_bound(api: Api) -> None:
    monotonic = FakeMonotonic()
    cache = api.app.state.read_cache = read_cache.ReadCache(monotonic=monotonic)
    partner, key = await api.register()
    url = f"/v1/partners/{partner['id']}/status"
    assert (await api.client.get(url, headers=api.bearer(key))).status_code == 200
    assert api.connection is not None
    await _revoke_elsewhere(api, partner["id"])
    # A check of another request is under way (it never ends here): within the bound the process's
    # memory still answers; past it, a request checks for itself.
    cache._checking = True
    monotonic.now += read_cache.BOUND_SECONDS - 0.1
    assert (await api.client.get(url, headers=api.bearer(key))).status_code == 200
    monotonic.now += 0.1
    assert (await api.client.get(url, headers=api.bearer(key))).status_code == 401


async def test_the_process_that_revokes_a_key_refuses_it_at_once(api: Api) -> None:
    partner, key = await api.register()
    keys = (await api.client.get(f"/v1/partners/{partner['id']}/api-keys", headers=api.admin)).json()["items"]
    url = f"/v1/partners/{partner['id']}/status"
    assert (await api.client.get(url, headers=api.bearer(key))).status_code == 200
    revoked = await api.client.delete(f"/v1/partners/{partner['id']}/api-keys/{keys[0]['id']}", headers=api.admin)
    assert revoked.status_code in (200, 204), revoked.text
    assert (await api.client.get(url, headers=api.bearer(key))).status_code == 401


async def test_terms_published_elsewhere_are_read_once_the_process_checks(api: Api) -> None:
    monotonic = FakeMonotonic()
    api.app.state.read_cache = read_cache.ReadCache(monotonic=monotonic)
    current = (await api.client.get("/v1/program/terms", headers=api.admin)).json()
    assert api.connection is not None
    later = api.clock.now() + timedelta(days=1)
    await api.connection.execute(
        text(
            "INSERT INTO program_terms_versions (version, effective_from, published_at, published_by, terms, digest) "
            "SELECT version + 1, :at, published_at, published_by, terms, digest FROM program_terms_versions "
            "WHERE version = :v"
        ),
        {"at": later, "v": current["version"]},
    )
    api.clock.advance(days=2)
    monotonic.now += read_cache.CHECK_SECONDS
    assert (await api.client.get("/v1/program/terms", headers=api.admin)).json()["version"] == current["version"] + 1


# --- several server processes ---------------------------------------------------------------------

VENV_BIN = Path(sys.executable).parent
REFUSED_WITHIN_SECONDS = 5.0
"""The documented bound (README, "What each process holds in memory"): read_cache.BOUND_SECONDS plus
the check's query."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_workers(committing_database_url: str) -> Iterator[tuple[str, str]]:
    """`partners serve --workers 2` on a database of the test's own, each process with its own cache."""
    port = _free_port()
    env = {
        **os.environ,
        "PARTNERS_ENVIRONMENT": "test",
        "PARTNERS_DATABASE_URL": committing_database_url,
        "PARTNERS_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "PARTNERS_MIGRATE_ON_START": "false",
        "PARTNERS_DB_POOL_SIZE": "4",
        "PARTNERS_LOG_LEVEL": "error",
        "PARTNERS_WORKER": "off",
    }
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
        yield base, committing_database_url
    finally:
        stop(process)


def _fresh(base: str, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
    """One request on a connection of its own, so successive ones reach either server process."""
    with httpx.Client(base_url=base, timeout=10) as client:
        return client.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs)


def _refused_from(base: str, method: str, path: str, key: str, refused: int, **kwargs: Any) -> float:
    """Send the request on fresh connections until 40 in a row are answered `refused` (both
    processes, well past one check each); return the seconds from the call to the first of those 40."""
    started = time.monotonic()
    streak_from: float | None = None
    streak = 0
    while streak < 40:
        sent = time.monotonic()
        assert sent - started < 3 * REFUSED_WITHIN_SECONDS, "still answered after three times the bound"
        status = _fresh(base, method, path, key, **kwargs).status_code
        if status == refused:
            streak_from = sent if streak == 0 else streak_from
            streak += 1
        else:
            streak = 0
    assert streak_from is not None
    return streak_from - started


@pytest.mark.slow
def test_a_revoked_key_and_a_suspended_partner_are_refused_within_the_bound_by_every_process(
    two_workers: tuple[str, str],
) -> None:
    base, database_url = two_workers
    admin = subprocess.run(
        [str(VENV_BIN / "partners"), "create-admin-key", "--name", "bound"],
        env={**os.environ, "PARTNERS_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert admin.returncode == 0, admin.stderr
    admin_key = admin.stdout.strip().splitlines()[-1]
    registration = {
        "company": "Bound Test GmbH",
        "country": "DE",
        "contact_name": "Ops",
        "contact_email": "ops@bound-test.example",
        "accepted_agreement_version": "2026-01",
    }
    created = httpx.post(f"{base}/v1/partners", json=registration, timeout=10)
    assert created.status_code == 201, created.text
    partner_id, key = created.json()["partner"]["id"], created.json()["api_key"]["key"]
    key_id = created.json()["api_key"]["id"]
    status_path = f"/v1/partners/{partner_id}/status"
    second = _fresh(base, "POST", f"/v1/partners/{partner_id}/api-keys", key, json={"name": "second"})
    assert second.status_code == 201, second.text
    for _ in range(20):  # both processes hold both keys
        assert _fresh(base, "GET", status_path, key).status_code == 200
        assert _fresh(base, "GET", status_path, second.json()["key"]).status_code == 200

    suspended = _fresh(base, "POST", f"/v1/partners/{partner_id}/suspend", admin_key, json={"reason": "bound"})
    assert suspended.status_code == 200, suspended.text
    write = ("POST", f"/v1/partners/{partner_id}/api-keys")
    assert _refused_from(base, *write, key, 403, json={"name": "third"}) <= REFUSED_WITHIN_SECONDS
    assert _fresh(base, "GET", status_path, key).status_code == 200  # a suspended partner's key still reads

    revoked = _fresh(base, "DELETE", f"/v1/partners/{partner_id}/api-keys/{key_id}", admin_key)
    assert revoked.status_code in (200, 204), revoked.text
    assert _refused_from(base, "GET", status_path, key, 401) <= REFUSED_WITHIN_SECONDS
    assert _fresh(base, "GET", status_path, second.json()["key"]).status_code == 200


# --- the status read's fast path (app/status_fast_path.py) -----------------------------------------


async def test_the_fast_path_answers_as_the_route_does(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api.app.state.read_cache = read_cache.ReadCache(monotonic=FakeMonotonic())  # no check falls due
    partner, key = await api.register()
    url = f"/v1/partners/{partner['id']}/status"
    # The first read checks the cache and loads the keys and terms (the route does): then both keys
    # and the terms are in the process's memory, which the fast path answers from.
    assert (await api.client.get(url, headers=api.bearer(key))).status_code == 200
    routed_by: list[str] = []
    route_status = status_domain.status

    async def spied(*args: Any, **kwargs: Any) -> status_domain.Status:
        routed_by.append("route")
        return await route_status(*args, **kwargs)

    monkeypatch.setattr(status_domain, "status", spied)
    fast = [await api.client.get(url, headers=api.bearer(key)), await api.client.get(url, headers=api.admin)]
    assert routed_by == []  # the fast path answered both
    monkeypatch.setattr(status_fast_path, "_PATH", re.compile(r"^$"))  # every request takes the route
    routed = [await api.client.get(url, headers=api.bearer(key)), await api.client.get(url, headers=api.admin)]
    assert routed_by == ["route", "route"]
    for one, other in zip(fast, routed, strict=True):
        assert one.status_code == other.status_code == 200
        assert one.content == other.content
        assert [(k, v) for k, v in one.headers.items() if k != "x-request-id"] == [
            (k, v) for k, v in other.headers.items() if k != "x-request-id"
        ]


async def test_what_the_fast_path_leaves_to_the_route_is_answered_as_before(api: Api) -> None:
    partner, key = await api.register()
    _other, other_key = await api.register()
    url = f"/v1/partners/{partner['id']}/status"
    store = await api.issue_key("store")
    reader = await api.issue_key("admin", ["write"])
    assert (await api.client.get(url, headers=api.bearer(other_key))).json()["code"] == "partner_not_found"
    assert (await api.client.get(url, headers=api.bearer(store))).status_code == 403
    assert (await api.client.get(url, headers=api.bearer(reader))).json()["code"] == "scope_missing"
    assert (await api.client.get(url, headers=api.bearer("qpp_unknown"))).json()["code"] == "invalid_api_key"
    assert (await api.client.get(url)).json()["code"] == "missing_api_key"
    assert (await api.client.get(url + "?nope=1", headers=api.bearer(key))).status_code == 422
    unknown = f"/v1/partners/{uuid.uuid4()}/status"
    assert (await api.client.get(unknown, headers=api.admin)).json()["code"] == "partner_not_found"
    assert (await api.client.head(url, headers=api.bearer(key))).status_code == 200


def test_the_routers_served_first_share_no_path_with_any_other_route() -> None:
    """app/main.py includes the directory's and the program's routers before the others, for speed:
    that changes no answer only while no route of theirs matches a path another route matches."""
    app = create_app()
    first = {id(r) for r in (directory_routes.router, program_routes.router)}

    def flat(routes: list[Any], owner: int | None = None) -> list[tuple[APIRoute, int | None]]:
        found: list[tuple[APIRoute, int | None]] = []
        for route in routes:
            if isinstance(route, APIRoute):
                found.append((route, owner))
            elif (included := getattr(route, "original_router", None)) is not None:
                found += flat(included.routes, id(included))
        return found

    routes = flat(app.routes)
    served_first = [r for r, owner in routes if owner in first]
    others = [r for r, owner in routes if owner not in first]
    assert served_first and others

    def sample(route: APIRoute) -> str:
        return re.sub(r"\{[^}]+\}", "x1", route.path)

    for one in served_first:
        for other in others:
            if set(one.methods or ()) & set(other.methods or ()):
                assert not other.path_regex.match(sample(one)), (one.path, other.path)
                assert not one.path_regex.match(sample(other)), (one.path, other.path)


async def test_only_a_served_app_keeps_what_it_built_at_start_out_of_the_collectors_full_passes(
    database_url: str,
) -> None:
    """A server process freezes what it built (tail latency, bench/README.md); a process that builds
    many apps, as the tests do, must not: frozen objects are never collected."""
    gc.unfreeze()
    try:
        for served, frozen in ((False, False), (True, True)):
            application = create_app(make_settings(database_url, migrate_on_start=False), served=served)
            async with application.router.lifespan_context(application):
                assert (gc.get_freeze_count() > 0) is frozen
    finally:
        gc.unfreeze()
