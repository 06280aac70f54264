"""The suite shares a Postgres server with others: it drops only the template databases that runs on
this machine made, and only once none has used them for a day."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from tests import databases
from tests.conftest import IN_CI


def _exists(name: str) -> bool:
    rows = asyncio.run(databases._admin("SELECT 1 FROM pg_database WHERE datname = $1", name))
    return bool(rows)


def test_only_our_own_stale_templates_are_dropped() -> None:
    problem = databases.postgres_available()
    if problem:
        if IN_CI:
            pytest.fail(f"Postgres is not reachable: {problem}", pytrace=False)
        pytest.skip(problem)
    tag = uuid.uuid4().hex[:8]
    foreign, ours_stale, ours_fresh = (f"partners_tpl_t{tag}_{kind}" for kind in ("foreign", "stale", "fresh"))
    for name in (foreign, ours_stale, ours_fresh):
        asyncio.run(databases._admin(f'CREATE DATABASE "{name}"'))
    databases.LOCK_DIR.mkdir(exist_ok=True)
    day_and_more = time.time() - databases.STALE_TEMPLATE_SECONDS - 60
    stale_marker = databases.LOCK_DIR / f"{ours_stale}.used"
    stale_marker.touch()
    os.utime(stale_marker, (day_and_more, day_and_more))
    (databases.LOCK_DIR / f"{ours_fresh}.used").touch()
    try:
        # A template with no marker here belongs to a run elsewhere, however old it is.
        dropped = databases.drop_stale_templates({foreign, ours_stale, ours_fresh}, keep=set())
        assert dropped == [ours_stale]
        assert _exists(foreign) and _exists(ours_fresh) and not _exists(ours_stale)
        assert not stale_marker.exists()
    finally:
        for name in (foreign, ours_stale, ours_fresh):
            asyncio.run(databases.drop_postgres(name))  # this test made all three
            (databases.LOCK_DIR / f"{name}.used").unlink(missing_ok=True)
