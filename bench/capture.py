"""Capture the SQL the service issues for one request and turn it into a pgbench script.

The service is built in this process (`create_app` with production settings on the benchmark
database) and called through httpx's ASGI transport; an SQLAlchemy `before_cursor_execute` listener
records every statement with its parameters, and `after_cursor_execute` the rows it returned. The
script replays the same statements in one transaction, parameters inlined as literals, except:

- values that must differ per transaction (the order id, the webhook id, the partner, its customer,
  its key) become pgbench variables, drawn per transaction from `bench_capture_targets`;
- ids the database generated (RETURNING) are kept with `\\gset` and used where the service used them.

Not captured, written out instead: BEGIN/COMMIT, which asyncpg sends itself (as BEGIN and END), for
writes; reads (GET) run without a transaction on Postgres, and so does their replay. The pool does
not pre-ping (app/db/session.py), so no round trip stands for it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import event

ID_FLOOR = 1_000_000_000
"""Generated ids are at least this (bench/seed.py moves the sequences), so they are recognisable."""
_PARAM = re.compile(r"\$(\d+)")


@dataclass
class Statement:
    sql: str
    parameter_sets: list[Sequence[Any]]
    returned: list[tuple[Any, ...]] | None = None
    columns: list[str] | None = None


@dataclass(frozen=True)
class HttpCall:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Captured:
    statements: list[Statement]
    status_code: int
    response: str


class NotServed(RuntimeError):
    """The service answers 404 or 405 on the route: it does not serve it (yet)."""


async def capture(
    database_url: str, secret: str, warmups: Sequence[HttpCall], probe: HttpCall, *, secrets_key: str
) -> Captured:
    """Serve `warmups` (connections, statement caches, first-use queries), then record `probe`.
    `secrets_key`: the Fernet key(s) production needs for stored secrets, as the served service has."""
    from app.main import create_app
    from app.settings import Settings

    settings = Settings(
        environment="production",
        database_url=database_url,
        webhook_secrets=[SecretStr(secret)],
        secrets_key=[SecretStr(key) for key in secrets_key.split(",") if key.strip()],
        migrate_on_start=False,
        log_level="warning",
        worker="off",  # only the request's own statements: accepted events are applied by workers
        mail="off",  # no mail server here (production needs one, or mail off)
    )
    application = create_app(settings)
    recorded: list[Statement] = []
    recording = False

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if recording:
            # executemany with one flat tuple: SQLAlchemy's batched INSERT ... RETURNING of several rows
            # (insertmanyvalues) reports executemany but passes a single parameter set.
            many = executemany and parameters and isinstance(parameters[0], list | tuple)
            sets = list(parameters) if many else [parameters]
            recorded.append(Statement(statement, [tuple(p) if isinstance(p, list | tuple) else p for p in sets]))

    def after(_conn: Any, cursor: Any, _statement: str, _parameters: Any, _context: Any, _executemany: bool) -> None:
        if recording and recorded:
            rows = getattr(cursor, "_rows", None)  # the asyncpg adapter's buffered rows; peeked, not consumed
            if rows:
                recorded[-1].returned = [tuple(r) for r in rows]
                recorded[-1].columns = list(rows[0].keys()) if hasattr(rows[0], "keys") else None

    async with application.router.lifespan_context(application):
        engine = application.state.engine
        event.listen(engine.sync_engine, "before_cursor_execute", before)
        event.listen(engine.sync_engine, "after_cursor_execute", after)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for call in warmups:
                answer = await client.request(call.method, call.path, headers=call.headers, content=call.body)
                if answer.status_code in (404, 405) and call.path == probe.path:
                    raise NotServed(call.path)
                if answer.status_code >= 300:
                    raise RuntimeError(f"capture warm-up {call.path} answered {answer.status_code}: {answer.text}")
            recording = True
            response = await client.request(probe.method, probe.path, headers=probe.headers, content=probe.body)
            recording = False
        event.remove(engine.sync_engine, "before_cursor_execute", before)
        event.remove(engine.sync_engine, "after_cursor_execute", after)
    return Captured(recorded, response.status_code, response.text)


_VARIABLE_LIKE = re.compile(r":(?=[A-Za-z_\x80-\U0010ffff])")


def _quote(text: str) -> str:
    """A string literal pgbench leaves alone: pgbench takes every `:name` in a command for a variable,
    even inside quotes, so a literal is cut after each such colon (`'order:' || 'x'`)."""
    pieces = _VARIABLE_LIKE.split(text)
    if len(pieces) == 1:
        return "'" + text.replace("'", "''") + "'"
    quoted = ["'" + (p + ":" if n < len(pieces) - 1 else p).replace("'", "''") + "'" for n, p in enumerate(pieces)]
    return "(" + " || ".join(quoted) + ")"


@dataclass
class Renderer:
    """Turns captured statements into pgbench script lines."""

    tokens: dict[str, str]
    """Literal text -> pgbench variable that replaces it (inside strings too)."""
    id_variables: dict[int, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)

    def _string(self, text: str) -> str:
        pieces: list[str] = [text]
        for token in sorted(self.tokens, key=len, reverse=True):
            split: list[str] = []
            for piece in pieces:
                if piece.startswith("\0"):
                    split.append(piece)
                    continue
                parts = piece.split(token)
                for n, part in enumerate(parts):
                    if n:
                        split.append("\0" + self.tokens[token])
                    split.append(part)
            pieces = split
        if len(pieces) == 1:
            return _quote(text)
        if len(pieces) == 3 and pieces[0] == "" and pieces[2] == "":
            return f"(:{pieces[1][1:]})"
        sql = [f":{p[1:]}::text" if p.startswith("\0") else _quote(p) for p in pieces if p]
        return "(" + " || ".join(sql) + ")"

    def literal(self, value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            if value in self.id_variables:
                return f"(:{self.id_variables[value]})"
            return str(value)
        if isinstance(value, float | decimal.Decimal):
            return repr(float(value)) if isinstance(value, float) else str(value)
        if isinstance(value, uuid.UUID):
            return self._string(str(value))
        if isinstance(value, dt.datetime | dt.date | dt.time):
            return _quote(value.isoformat())
        if isinstance(value, dt.timedelta):
            return _quote(f"{value.total_seconds()} seconds")
        if isinstance(value, bytes):
            return "'\\x" + value.hex() + "'"
        if isinstance(value, str):
            return self._string(value)
        return self._string(json.dumps(value))

    def statement(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None) -> str:
        flat = " ".join(sql.split())
        if parameters is None:
            return flat
        if isinstance(parameters, dict):
            raise ValueError("named parameters are not expected from the asyncpg dialect")
        return _PARAM.sub(lambda m: self.literal(parameters[int(m.group(1)) - 1]), flat)


def _referenced_later(statements: Sequence[Statement], start: int, value: int) -> bool:
    for later in statements[start:]:
        for params in later.parameter_sets:
            if params is not None and any(type(p) is int and p == value for p in params):
                return True
    return False


def to_pgbench(
    captured: Sequence[Statement],
    *,
    tokens: dict[str, str],
    prologue: Sequence[str],
    title: str,
    transaction: bool = True,
) -> tuple[str, list[str]]:
    """The pgbench script and notes on what could not be reproduced exactly; `transaction`: the
    statements ran in one transaction (BEGIN ... END), as every write does."""
    renderer = Renderer(tokens=tokens)
    lines = [f"-- {title}", "-- Generated by bench/run.py (bench/capture.py); regenerated on every run.", *prologue]
    if transaction:
        lines.append("BEGIN;")
    for index, statement in enumerate(captured):
        rendered = [renderer.statement(statement.sql, params) for params in statement.parameter_sets]
        gset = ""
        if statement.returned:
            ids = [
                v
                for row in statement.returned
                for v in row
                if type(v) is int and v >= ID_FLOOR and v not in renderer.id_variables
            ]
            wanted = [v for v in ids if _referenced_later(captured, index + 1, v)]
            if wanted and len(statement.returned) == 1 and len(rendered) == 1 and statement.columns:
                prefix = f"r{index}_"
                gset = f" \\gset {prefix}"
                for column, value in zip(statement.columns, statement.returned[0], strict=False):
                    if type(value) is int and value in wanted:
                        renderer.id_variables[value] = prefix + column
            elif wanted:
                renderer.unmapped.append(
                    f"statement {index} returned {len(statement.returned)} rows whose ids are reused later; "
                    "the replay reuses the captured ids"
                )
        for n, text in enumerate(rendered):
            lines.append(text + (gset if gset and n == len(rendered) - 1 else ";"))
    if transaction:
        lines.append("END;")
    return "\n".join(lines) + "\n", renderer.unmapped


def summarize(captured: Sequence[Statement]) -> list[str]:
    """One short line per statement, for the report."""
    out = []
    for statement in captured:
        flat = " ".join(statement.sql.split())
        out.append((flat[:110] + " ...") if len(flat) > 114 else flat)
    return out
