"""Which database errors are faults of the database rather than of the statement.

Shared by the HTTP layer (503 instead of 500) and anything else that must tell "try again later"
from "this is a bug": a connection lost or refused, a server shutting down or starting up, too many
connections, a pool timeout, SQLite's "database is locked"; and a transaction that lost a race.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

Fault = Literal["retry", "unavailable"]

# SQLSTATEs that say "the database is not there right now", not "your statement is wrong":
# connection exceptions (class 08), insufficient resources (53: too many connections, out of
# memory or disk), operator intervention (57: shutting down, starting up, terminated by an admin),
# lock not available (55P03) and system errors (58: I/O).
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_UNAVAILABLE_STATES = frozenset({"55P03"})
# Transactions that lost a race: retrying the same request succeeds.
_RETRY_STATES = frozenset({"40001", "40P01"})


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, wherever the driver put it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and state:
            return state
        current = getattr(current, "orig", None) or current.__cause__
    return None


def database_fault(exc: BaseException) -> Fault | None:
    """`"retry"` for a transaction that lost a race (deadlock, serialization failure),
    `"unavailable"` for a database that cannot be used right now, None for anything else (a bug)."""
    if isinstance(exc, SQLAlchemyTimeoutError):  # no connection free in the pool in time
        return "unavailable"
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return "unavailable"
    if not isinstance(exc, DBAPIError):
        return None
    state = _sqlstate(exc)
    if state in _RETRY_STATES:
        return "retry"
    if state is not None and (state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES):
        return "unavailable"
    if exc.connection_invalidated:
        return "unavailable"
    if isinstance(exc, InterfaceError):
        # asyncpg: connection closed or lost, "another operation is in progress" on a connection a
        # cancelled request left behind; SQLAlchemy has invalidated it by now.
        return "unavailable"
    if isinstance(exc.orig, OSError | ConnectionError | TimeoutError):
        return "unavailable"
    # SQLite's "database is locked" (the busy timeout ran out), "unable to open database file":
    # its operational errors are about the database file, not the statement.
    if isinstance(exc, OperationalError):
        return "unavailable"
    return None
