"""`GET /metrics`: the Prometheus text of every worker's figures."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app import metrics
from app.db.repositories import operations
from app.db.repositories import webhooks as webhooks_repo
from app.domain.errors import Unauthenticated
from app.routers.deps import ClockDep, SessionDep, SettingsDep

router = APIRouter()
_bearer = HTTPBearer(auto_error=False)


@router.get("/metrics", include_in_schema=False)
async def get_metrics(
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """Prometheus text format. With `PARTNERS_METRICS_TOKEN` set, only for `Authorization: Bearer <token>`."""
    if settings.metrics_token is not None:
        expected = settings.metrics_token.get_secret_value().encode()
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, expected):
            raise Unauthenticated(
                "Send the metrics token (PARTNERS_METRICS_TOKEN) as `Authorization: Bearer <token>`.",
                code="metrics_token_required",
            )
    metrics.parked_backlog(await operations.parked_backlog(session))
    metrics.outbound_backlog(await operations.outbound_backlog(session))
    _, oldest = await webhooks_repo.backlog(session)  # the worker's lag: the oldest event still waiting
    metrics.worker_lag(max(0.0, (clock.now() - oldest).total_seconds()) if oldest else 0.0)
    body, media_type = metrics.exposition()
    return Response(body, media_type=media_type)
