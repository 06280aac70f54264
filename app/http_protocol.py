"""The HTTP/1.1 protocol `partners serve` runs: uvicorn's httptools protocol, with the request head
(request line and headers) bounded while it arrives.

httptools hands a header to the protocol only once its line is complete, and until then holds the
line in memory, growing it piece by piece: a header line of hundreds of megabytes was read whole
before the application could refuse it. Here the bytes of each request's head are counted as they
are received and no more than the bound is ever given to the parser; past it, the request is
answered 431 and the connection closed at once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from app.settings import Settings

REQUEST_LINE_ALLOWANCE = 8 * 1024
"""What the head may hold beyond `PARTNERS_MAX_HEADER_BYTES`: the request line and the framing of
each header (`: ` and the line end), which the application's own check of the headers leaves out."""


def head_limit(settings: Settings) -> int:
    """The largest request head, as sent, that the server reads."""
    return settings.max_header_bytes + REQUEST_LINE_ALLOWANCE


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options bounding the request head whichever parser runs: this protocol (httptools)
    by default, and h11's own bound should `http="h11"` be chosen."""
    return {"http": BoundedHttpToolsProtocol, "h11_max_incomplete_event_size": head_limit(settings)}


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that refuses a request whose head grows past the bound (431), before the
    parser holds more of it. The bound is uvicorn's `h11_max_incomplete_event_size` (`server_options`
    sets it), the same for both parsers."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = config.h11_max_incomplete_event_size or head_limit(Settings.model_construct())
        self._in_head = True
        """Whether the bytes arriving belong to a request's head (until its headers are complete)."""
        self._head_bytes = 0
        self._heads_complete = 0

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        room = self.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # The head may end within what fits; what follows it is then the body or the next request.
        heads = self._heads_complete
        self._head_bytes = self.max_head_bytes
        if room > 0:
            super().data_received(data[:room])
            if self.transport.is_closing():  # the parser refused what it was given
                return
        if self._heads_complete == heads:
            self._refuse_head()
            return
        self.data_received(data[room:])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads_complete += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What comes next is the next request's head.
        self._in_head = True
        self._head_bytes = 0

    def _refuse_head(self) -> None:
        prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
        self.logger.warning("%sRequest head over %d bytes: refused with 431.", prefix, self.max_head_bytes)
        if self.cycle is not None and not self.cycle.response_complete:
            # An earlier request on this connection is still being answered: no room for an answer.
            self.transport.close()
            return
        problem = {
            "type": "/problems/headers_too_large",
            "title": "Request headers too large",
            "status": 431,
            "detail": f"The request line and headers exceed {self.max_head_bytes} bytes.",
            "code": "headers_too_large",
        }
        body = json.dumps(problem).encode()
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/problem+json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
