"""CSV answers: cells a spreadsheet would run as formulas are neutralised, long exports are streamed.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (a company called `=HYPERLINK(...)` would run in
finance's spreadsheet), so it is written with a leading `'`, which spreadsheets show as text and
hide. Numbers are written as they are: `-1500` is an amount, not a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import long_read, unit_of_work

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 500
"""Rows read per query of a streamed export."""

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV"}
}

Row = TypeVar("Row")


def cell(value: object) -> object:
    """One cell: numbers as numbers, everything else as text that cannot start a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def model_row(model: BaseModel) -> list[object]:
    """A response model's fields, in their declared order, as cells."""
    return list(model.model_dump(mode="json").values())


def text(rows: Iterable[Sequence[object]]) -> str:
    buffer = io.StringIO()
    # RFC 4180's CRLF: with "\n" alone, the writer would leave a cell holding "\r" unquoted.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def _disposition(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def csv_response(header: Sequence[str], rows: Iterable[Sequence[object]], filename: str) -> PlainTextResponse:
    """A short CSV answered at once."""
    return PlainTextResponse(text([header, *rows]), media_type="text/csv", headers=_disposition(filename))


async def streamed_csv(
    request: Request,
    session: AsyncSession,
    *,
    header: Sequence[str],
    fetch: Callable[[AsyncSession, Row | None, int], Awaitable[Sequence[Row]]],
    to_row: Callable[[Row], Sequence[object]],
    filename: str,
) -> StreamingResponse:
    """A CSV of any length, `BATCH` rows per query, sent as it is read.

    `fetch(session, after, limit)` reads the rows after the row `after` (None: from the start). The
    first batch is read here, in the request's session, so a refusal (an unknown partner) is still
    a problem document; the next ones each in a session of their own, since the request's session
    has closed once the answer starts.
    """
    first = await fetch(session, None, BATCH + 1)
    factory = request.app.state.session_factory

    async def body() -> AsyncIterator[str]:
        yield text([header])
        rows = first
        while True:
            page = rows[:BATCH]
            yield text(to_row(row) for row in page)
            if len(rows) <= BATCH:
                return
            async with unit_of_work(factory) as batch_session:
                await long_read(batch_session)
                rows = await fetch(batch_session, page[-1], BATCH + 1)

    return StreamingResponse(body(), media_type="text/csv", headers=_disposition(filename))
