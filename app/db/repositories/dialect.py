"""What differs between the two databases, in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

T = TypeVar("T")


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


CHUNK = 5_000
"""Values per `IN (...)` list: both databases take 32,766 bound parameters in a statement at most."""


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    """`values` in lists of at most `size`, for statements that name many rows."""
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]
