"""What differs between the two databases, in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def insert(on: AsyncSession | AsyncConnection, table: Any) -> Any:
    """An INSERT with `on_conflict_do_nothing` / `on_conflict_do_update` for the session's (or the
    connection's) database."""
    name = on.dialect.name if isinstance(on, AsyncConnection) else on.get_bind().dialect.name
    dialect = postgresql if name == "postgresql" else sqlite
    return dialect.insert(table)


def per_dialect(build: Callable[[Any], Any]) -> dict[str, Any]:
    """A statement built once for each database, from a function of the dialect's module (its
    `insert` has `on_conflict_do_*`); `pick` takes the session's."""
    return {"postgresql": build(postgresql), "sqlite": build(sqlite)}


def pick(on: AsyncSession | AsyncConnection, statements: dict[str, Any]) -> Any:
    name = on.dialect.name if isinstance(on, AsyncConnection) else on.get_bind().dialect.name
    return statements["postgresql" if name == "postgresql" else "sqlite"]


def table_of(model: Any) -> Any:
    """The model's Core table: statements on it skip the ORM's handling (an ORM bulk INSERT, say,
    leaves out NULL columns and so compiles a statement per combination of them)."""
    return model.__table__
