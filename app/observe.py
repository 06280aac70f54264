"""One look at each HTTP request: its duration and status, for the request log and the metrics."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.request_log import log_request

CLIENT_GONE = 400
"""The status logged for a request whose client went away before it was answered."""


class ObserveMiddleware:
    """Times each request once it has been answered (or has failed: status 500), then logs it and
    records its metrics. Installed inside the request-id middleware, so the line carries the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        answered = client_gone = False

        async def receive_and_note() -> Message:
            nonlocal client_gone
            message = await receive()
            if message["type"] == "http.disconnect":
                client_gone = True
            return message

        async def send_and_note(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
            await send(message)

        metrics.request_started()
        try:
            await self.app(scope, receive_and_note, send_and_note)
        finally:
            if client_gone and not answered:
                # The request never arrived whole (a body broken off mid-stream, which the server
                # answers 400 itself, or a client gone before the end): a client error, not ours.
                status = CLIENT_GONE
            seconds = time.perf_counter() - started
            metrics.request_answered(scope, status, seconds)
            log_request(scope, status, seconds)
