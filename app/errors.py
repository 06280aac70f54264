"""RFC 9457 problem+json for every error the service answers, and one place that maps them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.faults import database_fault
from app.domain import errors as de
from app.http_methods import allowed_methods, route_path
from app.messages import sentence

log = logging.getLogger("app.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where the bad value is, e.g. `body.country` or `query.limit`.")
    message: str = Field(description="What is wrong with the value, in a sentence.")
    type: str = Field(description="Machine-readable kind of error, e.g. `missing`, `string_too_long`.")


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="A URI reference naming the kind of problem, `/problems/<code>`: a page that explains it."
    )
    title: str = Field(description="A short summary of the kind of problem, e.g. `Not found`.")
    status: int = Field(description="The HTTP status code of the response.")
    detail: str = Field(description="What went wrong, in a sentence a person understands.")
    code: str = Field(description="Stable machine-readable code, e.g. `partner_not_found`.")
    instance: str | None = Field(default=None, description="The path of the request that failed.")
    request_id: str | None = Field(
        default=None, description="The request's `X-Request-ID`, to quote when reporting the problem; in the logs too."
    )
    errors: list[FieldError] | None = Field(default=None, description="For validation errors: each bad field.")


STATUS_FOR: list[tuple[type[de.DomainError], int]] = [
    (de.NotFound, 404),
    (de.Conflict, 409),
    (de.Invalid, 422),
    (de.Unauthenticated, 401),
    (de.Forbidden, 403),
    (de.RateLimited, 429),
    (de.Unavailable, 503),
]

RESPONSE_DESCRIPTIONS = {
    400: "The body could not be read (not UTF-8, or not the declared media type)",
    401: "No valid API key (or webhook signature)",
    403: "The key is of the wrong kind or lacks the scope",
    404: "No such object, or it belongs to another partner",
    405: "Method not allowed",
    409: "Conflicts with the current state",
    413: "The request body is larger than this route accepts",
    422: "Invalid input: each bad field is listed",
    429: "Too many requests; see Retry-After",
    503: "Database unavailable, or a conflicting change at the same time (code `retry`); see Retry-After",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of error answers; `app.main` moves them to problem+json."""
    return {s: {"model": Problem, "description": RESPONSE_DESCRIPTIONS[s]} for s in statuses}


class ProblemResponse(JSONResponse):
    """An RFC 9457 problem document, JSON on the wire; `problem` keeps the document itself, so a page
    answering the same refusal (app/routers/pages/common.py) reads it without parsing the body."""

    def __init__(self, problem: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> None:
        self.problem = problem
        super().__init__(problem, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def problem_response(
    request: Request,
    status: int,
    *,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    errors: list[dict[str, str]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",  # a page the service serves: what the code means and what to do
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    # Extension members add to the document and never replace its standard members.
    body.update({k: v for k, v in (extra or {}).items() if v is not None and k not in body})
    if errors is not None:
        body["errors"] = errors
    return ProblemResponse(body, status, headers)


def _status_for(exc: de.DomainError) -> int:
    for cls, status in STATUS_FOR:
        if isinstance(exc, cls):
            return status
    return 400


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, de.DomainError)
    status = _status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, de.RateLimited | de.Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, de.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return problem_response(
        request,
        status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=headers or None,
        extra=exc.extra,
    )


def _json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    content_type = request.headers.get("content-type")
    body_refused = any(tuple(err.get("loc", ()))[:1] == ("body",) for err in exc.errors())
    if body_refused and content_type and not _json_media_type(content_type):
        # A JSON route given another media type: say so, rather than list the body's fields.
        media = content_type.split(";", 1)[0].strip()
        return problem_response(
            request,
            415,
            code="unsupported_media_type",
            title="Unsupported media type",
            detail=f"This route reads application/json; the body was sent as {media}.",
            headers={"Accept": "application/json"},
        )
    errors = [
        {
            "field": _location(err.get("loc", ())),
            "message": sentence(err),
            "type": str(err.get("type", "value_error")),
        }
        for err in exc.errors()
    ]
    fields = ", ".join(sorted({e["field"] for e in errors})) or "the request"
    return problem_response(
        request,
        422,
        code="validation_failed",
        title="Invalid request",
        detail=f"The request has invalid or missing values: {fields}.",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "route_not_found", 405: "method_not_allowed", 400: "malformed_body", 413: "body_too_large"}
    detail = exc.detail if isinstance(exc.detail, str) else "The request was refused."
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 404:
        detail = f"There is no route {request.method} {request.url.path}."
    if exc.status_code == 405:
        # Starlette names only the first matching route's methods; a path served by several
        # routes (GET and POST apart) must list them all.
        allowed = _allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        detail = f"{request.method} is not allowed on {request.url.path}; allowed: {', '.join(allowed)}."
    return problem_response(
        request,
        exc.status_code,
        code=codes.get(exc.status_code, "http_error"),
        title={404: "Not found", 405: "Method not allowed", 413: "Request body too large"}.get(exc.status_code, detail),
        detail=detail,
        headers=headers or None,
    )


def _allowed_methods(request: Request) -> list[str]:
    return allowed_methods(request.app, route_path(request.scope))


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    log.info("integrity error answered as 409: %s", exc)
    return problem_response(
        request,
        409,
        code="conflict",
        title="Conflict",
        detail="The change conflicts with data written at the same time; read it again and retry.",
    )


RETRY_AFTER_SECONDS = 1
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def database_problem(request: Request, fault: str, exc: BaseException) -> JSONResponse:
    if fault == "retry":
        log.warning("transaction lost a race, answered 503 retry: %s", exc)
        return problem_response(
            request,
            503,
            code="retry",
            title="Try again",
            detail="The change collided with another one made at the same time and was rolled back; send it again.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    log.error("database unavailable: %s", exc)
    return problem_response(
        request,
        503,
        code="database_unavailable",
        title="Database unavailable",
        detail="The database could not be reached or is restarting; nothing was changed. Try again shortly.",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    fault = database_fault(exc)
    if fault is None:
        return await unexpected_error(request, exc)
    return database_problem(request, fault, exc)


async def unexpected_error(request: Request, exc: BaseException) -> JSONResponse:
    log.error("unexpected error", exc_info=exc, extra={"request_id": getattr(request.state, "request_id", None)})
    return problem_response(
        request,
        500,
        code="internal_error",
        title="Internal error",
        detail="Something went wrong on our side; the request id identifies it in the logs.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(de.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    # A database that cannot be used now, or a transaction that lost a race, is a retryable 503;
    # any other database error is ours (500).
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(SQLAlchemyTimeoutError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    # Any other exception is answered by `app.main.CatchAllMiddleware`: Starlette's own handler for
    # `Exception` answers and then re-raises, and the server then drops the keep-alive connection.
