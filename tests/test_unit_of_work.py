"""One unit of work: app/db/session.py begins, commits and rolls back every transaction the service
runs; the rest of app/ may flush and take savepoints, never end a transaction itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import commit_now, unit_of_work
from app.domain import events
from app.domain.errors import Invalid
from tests.conftest import Api

APP = Path(__file__).resolve().parent.parent / "app"
ENDS = {"begin", "commit", "rollback"}
"""`session.begin()`, `engine.begin`, `session.commit()`, ... (`begin_nested` savepoints are fine)."""

OWNER = "db/session.py"
EXCEPTIONS = {
    # Alembic runs the migrations in a connection of its own and commits it when they are done.
    ("db/migrations/env.py", "commit"),
    # A savepoint per row (`bind.begin_nested()`), ended by hand: a row that fails is skipped.
    ("db/migrations/versions/2026_11_26_b7e1d3a9c512_directory_search_text.py", "commit"),
    ("db/migrations/versions/2026_11_26_b7e1d3a9c512_directory_search_text.py", "rollback"),
}
"""Where app/ may end a transaction outside the unit of work, and why. The deliberate second
transactions of the service itself (the idempotency claim and release, the registration rate count)
go through the unit of work with a `purpose`, so they are not listed here."""


def _ends(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(n.attr, n.lineno) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ENDS]


def test_only_the_unit_of_work_begins_commits_or_rolls_back() -> None:
    found: set[tuple[str, str]] = set()
    stray = []
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP).as_posix()
        if relative == OWNER:
            continue
        for name, line in _ends(path):
            if (relative, name) in EXCEPTIONS:
                found.add((relative, name))
            else:
                stray.append(f"app/{relative}:{line}: .{name}")
    assert not stray, (
        "A transaction is begun, committed or rolled back outside app/db/session.py; use "
        "`unit_of_work` (with a `purpose` for a deliberate second transaction):\n" + "\n".join(stray)
    )
    assert found == EXCEPTIONS, f"listed exceptions no longer in the code: {sorted(EXCEPTIONS - found)}"


def test_the_check_sees_each_form() -> None:
    source = (
        "async def f(s, e, m):\n    await s.commit()\n    await s.rollback()\n"
        "    async with m.begin(): pass\n    x = e.begin\n"
    )
    tree = ast.parse(source)
    names = sorted(n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ENDS)
    assert names == ["begin", "begin", "commit", "rollback"]


async def _recorded(api: Api, subject: str) -> bool:
    async with unit_of_work(api.app.state.session_factory) as session:
        return await events.exists(session, "terms.took_effect", subject)


def _record(session: AsyncSession, api: Api, subject: str) -> None:
    now = api.clock.now()
    payload = events.TermsTookEffect(version=99, effective_from=now, partners_recomputed=0, levels_changed=0)
    events.record(session, "terms.took_effect", payload, occurred_at=now, partner_id=None, subject=subject)


async def test_unit_of_work_commits_a_finished_block_and_a_kept_refusal_and_rolls_back_the_rest(api: Api) -> None:
    factory = api.app.state.session_factory
    async with unit_of_work(factory) as session:
        _record(session, api, "terms:finished")
    with pytest.raises(RuntimeError):
        async with unit_of_work(factory) as session:
            _record(session, api, "terms:failed")
            await session.flush()
            raise RuntimeError("fails")
    with pytest.raises(Invalid):
        async with unit_of_work(factory) as session:
            _record(session, api, "terms:refused")
            raise Invalid("refused, nothing kept")
    with pytest.raises(Invalid):
        async with unit_of_work(factory, purpose="a refusal that keeps its record") as session:
            assert session.info["purpose"] == "a refusal that keeps its record"
            _record(session, api, "terms:kept")
            raise Invalid("refused, its record kept", keep_writes=True)
    assert await _recorded(api, "terms:finished")
    assert not await _recorded(api, "terms:failed")
    assert not await _recorded(api, "terms:refused")
    assert await _recorded(api, "terms:kept")


async def test_commit_now_keeps_the_first_part_when_the_rest_fails(api: Api) -> None:
    with pytest.raises(RuntimeError):
        async with unit_of_work(api.app.state.session_factory) as session:
            _record(session, api, "terms:claimed")
            await commit_now(session, purpose="the first part is kept whatever follows")
            _record(session, api, "terms:work")
            await session.flush()
            raise RuntimeError("the work fails")
    assert await _recorded(api, "terms:claimed")
    assert not await _recorded(api, "terms:work")
