"""Bounds on what a request may send, enforced before the application reads it.

- Headers: their total size is bounded (431).
- Body: bounded by `Content-Length` before a byte is read, and while it streams when it is
  chunked (413). The customer import, a CSV of the vendor's customers, gets a larger bound.
- JSON bodies: nesting depth bounded (422); Python's parser would otherwise recurse until
  `RecursionError`. The store webhook route checks depth itself, as it keeps the raw body of a
  rejected event.
"""

from __future__ import annotations

from collections import deque

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.domain.json_limits import JsonTooDeep, check_depth
from app.errors import problem_response
from app.settings import Settings

LARGE_BODY_PREFIXES = ("/v1/customer-imports", "/v1/statements/bulk-")
"""Routes whose bodies are lists the API lets grow past 1 MiB: the vendor's customers as CSV, and up
to 10,000 statements approved or paid at once (each payment with a reference of up to 200 characters)."""
OWN_DEPTH_CHECK_PREFIXES = ("/v1/webhooks/",)


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the body grows past the limit. An HTTPException, so that FastAPI,
    which turns other errors met while reading a body into 400, passes it on as it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            detail=f"The request body exceeds {limit} bytes on this route.",
            # The rest of the body is never read, so the connection cannot carry another request.
            headers={"Connection": "close"},
        )


def body_limit(settings: Settings, path: str) -> int:
    """The largest body a request to this path may send."""
    if path.startswith(LARGE_BODY_PREFIXES):
        return settings.max_import_body_bytes
    return settings.max_body_bytes


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if sum(len(name) + len(value) for name, value in headers) > self.settings.max_header_bytes:
            await self._refuse(
                scope,
                send,
                431,
                code="headers_too_large",
                title="Request headers too large",
                detail=f"The request's headers exceed {self.settings.max_header_bytes} bytes.",
            )
            return
        limit = body_limit(self.settings, scope["path"])
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await self._too_large(scope, send, limit)
            return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        app_receive: Receive = limited_receive
        try:
            if _is_json(headers) and not scope["path"].startswith(OWN_DEPTH_CHECK_PREFIXES):
                body = await _read_all(limited_receive)
                if body is None:
                    return
                try:
                    check_depth(body)
                except JsonTooDeep as exc:
                    await self._refuse(
                        scope,
                        send,
                        422,
                        code="json_too_deep",
                        title="Invalid request",
                        detail=f"The body {exc}; nothing was changed.",
                        errors=[{"field": "body", "message": str(exc), "type": "json_too_deep"}],
                    )
                    return
                app_receive = _replay(body, receive)
            await self.app(scope, app_receive, tracking_send)
        except BodyTooLarge:
            if response_started:
                raise
            await self._too_large(scope, send, limit)

    async def _too_large(self, scope: Scope, send: Send, limit: int) -> None:
        refusal = BodyTooLarge(limit)
        await self._refuse(
            scope,
            send,
            413,
            code="body_too_large",
            title="Request body too large",
            detail=refusal.detail,
            headers=dict(refusal.headers or {}),
        )

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        *,
        code: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        response = problem_response(
            Request(scope), status, code=code, title=title, detail=detail, headers=headers, errors=errors
        )
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            return b"json" in value.lower()
    return False


async def _read_all(receive: Receive) -> bytes | None:
    """The whole body, or None when the client went away before sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the already-read body to the application once, then pass on what the server sends."""
    return replay([{"type": "http.request", "body": body, "more_body": False}], receive)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """Hand the messages already received to the application again, in their order, then pass on
    what the server sends."""
    pending = deque(messages)

    async def replayed() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replayed
