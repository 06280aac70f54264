"""The pages a problem document's `type` points to: what each `code` means and what to do."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from app import problems
from app.domain.errors import NotFound

router = APIRouter(prefix="/problems")


@router.get("", include_in_schema=False)
async def list_problems() -> HTMLResponse:
    return HTMLResponse(problems.index())


@router.get("/{code}", include_in_schema=False)
async def get_problem(code: str) -> HTMLResponse:
    if code not in problems.PROBLEMS:
        raise NotFound(f"There is no problem code {code!r}; /problems lists them.", code="not_found")
    return HTMLResponse(problems.page(code))
