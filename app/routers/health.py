"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from app.db.compatibility import schema_state
from app.db.migrate import head_revision
from app.routers.schemas.program import Health

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", summary="Liveness")
async def liveness() -> Health:
    """The process is up and answering. Touches nothing else."""
    return Health(status="ok")


@router.get(
    "/ready",
    summary="Readiness",
    response_model=Health,
    responses={
        503: {
            "model": Health,
            "description": "Database unreachable, behind this build (`not_migrated`), or at a later migration "
            "that does not declare this build compatible (`schema_incompatible`)",
        }
    },
)
async def readiness(request: Request) -> Any:
    """The database answers and its schema is at this build's latest migration, or at a later one that
    declares this build compatible (an expand-only migration run ahead of a rolling deploy)."""
    expected = head_revision()
    try:
        state = await schema_state(request.app.state.engine)
    except (DBAPIError, OSError):
        body = Health(status="unavailable", database="unreachable", expected_revision=expected)
        return JSONResponse(body.model_dump(), status_code=503)
    body = Health(
        status="ok" if state.ready else "unavailable",
        database=state.code,
        schema_revision=state.schema_revision,
        expected_revision=state.build_revision,
        oldest_compatible_revision=state.oldest_compatible_revision,
        detail=state.explain() if state.ahead or not state.ready else None,
    )
    return body if state.ready else JSONResponse(body.model_dump(), status_code=503)
