"""Readiness across deploys: `partners migrate` runs ahead of a rolling deploy, and the instances of
the build before it keep serving while the new migrations declare them compatible (expand), and stop
(readiness 503 `schema_incompatible`, worker paused) once one does not (contract).

The later migrations are real Alembic files this build does not know, written to a temporary
directory and run against the test's own database through the service's migration environment.
"""

from __future__ import annotations

import asyncio
import logging
import os
from argparse import Namespace
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app import cli
from app.db import compatibility, migrate
from app.db.session import create_engine
from app.main import create_app
from app.worker.schema_gate import RECHECK
from tests.conftest import Api, MovableClock, _first_admin_key, make_settings
from tests.program import Customer, Program, line, order_event, t

HEAD = migrate.head_revision()
BEFORE_HEAD = str(ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_revision(HEAD).down_revision)
EXPAND = "d0c0ffee0001"
CONTRACT = "d0c0ffee0002"

LATER_MIGRATIONS = {
    EXPAND: f'''"""Expand: a nullable column the build before it never reads."""
import sqlalchemy as sa
from alembic import op

revision = "{EXPAND}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None
compatible_with = "{HEAD}"


def upgrade() -> None:
    op.add_column("partners", sa.Column("nickname", sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column("partners", "nickname")
''',
    CONTRACT: f'''"""Contract: the column's data is gone; only the build of this revision works with it."""
import sqlalchemy as sa
from alembic import op

revision = "{CONTRACT}"
down_revision = "{EXPAND}"
branch_labels = None
depends_on = None
compatible_with = "{CONTRACT}"


def upgrade() -> None:
    op.drop_column("partners", "nickname")


def downgrade() -> None:
    op.add_column("partners", sa.Column("nickname", sa.String(length=100), nullable=True))
''',
}


@pytest.fixture
def later_build(tmp_path: Path, committing_database_url: str) -> Config:
    """The Alembic configuration of a later build: this build's migrations and two more."""
    versions = tmp_path / "later_versions"
    versions.mkdir()
    for revision, source in LATER_MIGRATIONS.items():
        (versions / f"{revision}.py").write_text(source)
    config = migrate.alembic_config(committing_database_url)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join([str(migrate.MIGRATIONS / "versions"), str(versions)]))
    return config


async def _migrate(config: Config, revision: str, *, down: bool = False) -> None:
    """`partners migrate` of the later build (or its rollback), run while this build's instance serves."""
    await asyncio.to_thread(command.downgrade if down else command.upgrade, config, revision)


@pytest.fixture
async def api(committing_database_url: str, clock: MovableClock) -> AsyncIterator[Api]:
    """This build's instance on a database of the test's own, its worker drained by the test."""
    application = create_app(make_settings(committing_database_url), clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            key = await _first_admin_key(application.state.session_factory, clock.now())
            yield Api(client=client, connection=None, clock=clock, app=application, admin_key=key)


@pytest.fixture
def worker_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("app")  # it does not propagate to the root logger caplog watches
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def _worker_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "app.worker" and r.levelno >= logging.WARNING]


async def _accepted_order(program: Program) -> tuple[tuple[str, str], str]:
    """A partner, its registered customer and an order accepted, not applied yet: (partner, event url)."""
    partner = await program.partner()
    customer = Customer.new()
    assert (await program.register(partner, customer, at="2026-01-10T09:00:00Z")).status_code == 201
    program.at("2026-02-01T10:01:00Z")
    event = order_event(customer, [line("desktop", 2, 96000)], placed_at=t("2026-02-01T10:00:00Z"))
    response = await program.api.deliver(event, "msg_deploy")
    assert response.status_code == 202 and response.json()["status"] == "accepted", response.text
    return partner, str(response.json()["url"])


async def _status(api: Api, url: str) -> str:
    response = await api.client.get(url, headers=api.admin)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def _applier(api: Api) -> dict[str, Any]:
    response = await api.client.get("/v1/jobs", headers=api.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"items", "next_cursor", "has_more", "store_events", "applier"} <= body.keys()
    return dict(body["applier"])


async def test_a_later_expand_migration_keeps_the_build_ready_and_applying(api: Api, later_build: Config) -> None:
    program = Program(api)
    partner, url = await _accepted_order(program)
    await _migrate(later_build, EXPAND)

    ready = await api.client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert (body["status"], body["database"]) == ("ok", "ok")
    assert (body["schema_revision"], body["expected_revision"]) == (EXPAND, HEAD)
    assert body["oldest_compatible_revision"] == HEAD
    assert EXPAND in body["detail"] and HEAD in body["detail"]

    assert await api.drain(scheduled=False) > 0
    assert await _status(api, url) == "applied"
    assert await program.total_points(partner) == 2
    applier = await _applier(api)
    assert (applier["state"], applier["reason"]) == ("running", None)
    assert (applier["schema_revision"], applier["build_revision"]) == (EXPAND, HEAD)


async def test_a_later_contract_migration_makes_the_build_unready_and_pauses_its_worker(
    api: Api,
    later_build: Config,
    committing_database_url: str,
    worker_log: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    program = Program(api)
    partner, url = await _accepted_order(program)
    await _migrate(later_build, CONTRACT)

    ready = await api.client.get("/health/ready")
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert (body["status"], body["database"]) == ("unavailable", "schema_incompatible")
    assert (body["schema_revision"], body["expected_revision"]) == (CONTRACT, HEAD)
    assert body["oldest_compatible_revision"] == CONTRACT
    assert CONTRACT in body["detail"] and HEAD in body["detail"]

    # The old build never applies the new schema's data with its old rules: the event waits.
    assert await api.drain() == 0
    assert await _status(api, url) == "accepted"
    assert await program.total_points(partner) == 0
    applier = await _applier(api)
    assert (applier["state"], applier["reason"]) == ("paused", "schema_incompatible")
    assert (applier["schema_revision"], applier["build_revision"]) == (CONTRACT, HEAD)
    assert applier["oldest_compatible_revision"] == CONTRACT
    [paused] = _worker_lines(worker_log)
    assert "paused (schema_incompatible)" in paused and CONTRACT in paused and HEAD in paused
    # Nor does `partners sweep` of this build run the jobs by hand.
    assert await asyncio.to_thread(cli.cmd_sweep, make_settings(committing_database_url), Namespace()) == 1
    assert "sweep refused: schema_incompatible" in capsys.readouterr().err
    # Nor an admin's replay through this build (it would apply the event in the request).
    event_id = int(url.rsplit("/", 1)[1])
    replay = await api.client.post(f"/v1/webhook-events/{event_id}/replay", headers=api.admin)
    assert replay.status_code == 503, replay.text
    assert replay.json()["code"] == "schema_incompatible" and CONTRACT in replay.json()["detail"]
    assert replay.headers["retry-after"] == "30"

    # Looking again within RECHECK says nothing more; the pause is logged once.
    api.clock.advance(seconds=RECHECK.total_seconds())
    assert await api.drain() == 0
    assert len(_worker_lines(worker_log)) == 1

    # The database rolled back to a revision that declares this build compatible: it resumes.
    await _migrate(later_build, EXPAND, down=True)
    assert (await api.client.get("/health/ready")).status_code == 200
    assert await api.drain(scheduled=False) == 0  # still within RECHECK of the last look
    api.clock.advance(seconds=RECHECK.total_seconds())
    assert await api.drain(scheduled=False) > 0
    assert await _status(api, url) == "applied"
    assert await program.total_points(partner) == 2
    assert "resumed" in _worker_lines(worker_log)[-1]
    assert (await _applier(api))["state"] == "running"


async def test_a_database_behind_the_build_is_not_migrated_and_the_worker_waits(
    api: Api, committing_database_url: str, worker_log: pytest.LogCaptureFixture
) -> None:
    program = Program(api)
    partner, url = await _accepted_order(program)
    await asyncio.to_thread(migrate.downgrade, committing_database_url, BEFORE_HEAD)

    ready = await api.client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["database"] == "not_migrated"
    assert (ready.json()["schema_revision"], ready.json()["expected_revision"]) == (BEFORE_HEAD, HEAD)
    assert await api.drain() == 0
    assert await _status(api, url) == "accepted"
    assert ((await _applier(api))["state"], (await _applier(api))["reason"]) == ("paused", "not_migrated")
    assert "paused (not_migrated)" in _worker_lines(worker_log)[0]

    await asyncio.to_thread(migrate.upgrade, committing_database_url)
    api.clock.advance(seconds=RECHECK.total_seconds())
    assert await api.drain(scheduled=False) > 0
    assert await _status(api, url) == "applied"
    assert await program.total_points(partner) == 2


async def test_a_revision_that_recorded_nothing_is_not_compatible(committing_database_url: str) -> None:
    """A database at a revision unknown to this build, with no record of it (migrated by a build from
    before the records, or by hand), is assumed incompatible."""
    engine = create_engine(committing_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'feedfacecafe'"))
        state = await compatibility.schema_state(engine)
    finally:
        await engine.dispose()
    assert (state.code, state.schema_revision, state.oldest_compatible_revision) == (
        "schema_incompatible",
        "feedfacecafe",
        None,
    )
    assert "records no compatibility" in state.explain()


def test_every_step_between_the_build_and_the_database_must_declare_the_build_compatible() -> None:
    """An expand step after a contract step does not make an older build compatible again."""
    known = compatibility.known_revisions()
    rows = {
        "c1": (HEAD, HEAD),  # expand
        "c2": ("c2", "c1"),  # contract
        "c3": (HEAD, "c2"),  # expand, wrongly declaring the build before the contract step
    }
    assert compatibility._compatible("c1", rows, known, HEAD)
    assert not compatibility._compatible("c2", rows, known, HEAD)
    assert not compatibility._compatible("c3", rows, known, HEAD)
    # A chain with a gap (a migration that recorded nothing) is not compatible either.
    assert not compatibility._compatible("c9", {"c9": (HEAD, "c8")}, known, HEAD)
    # A chain that never meets this build's head (another branch off an older revision) is not.
    assert not compatibility._compatible("b1", {"b1": (BEFORE_HEAD, BEFORE_HEAD)}, known, HEAD)
