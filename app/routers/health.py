"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from app.db.migrate import current_revision, head_revision
from app.routers import schemas

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="Liveness")
async def liveness() -> schemas.Health:
    """The process is up and answering. Touches nothing else."""
    return schemas.Health(status="ok")


@router.get(
    "/ready",
    summary="Readiness",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Health, "description": "Database unreachable or not migrated"}},
)
async def readiness(request: Request) -> Any:
    """The database answers and its schema is at the latest migration."""
    expected = head_revision()
    try:
        revision = await current_revision(request.app.state.engine)
    except (DBAPIError, OSError):
        body = schemas.Health(status="unavailable", database="unreachable", expected_revision=expected)
        return JSONResponse(body.model_dump(), status_code=503)
    if revision != expected:
        body = schemas.Health(
            status="unavailable",
            database="not_migrated",
            schema_revision=revision,
            expected_revision=expected,
        )
        return JSONResponse(body.model_dump(), status_code=503)
    return schemas.Health(status="ok", database="ok", schema_revision=revision, expected_revision=expected)
