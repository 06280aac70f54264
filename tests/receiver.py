"""A webhook receiver for tests: a small ASGI app under uvicorn on 127.0.0.1 that verifies every
delivery with the `standardwebhooks` reference library, as a subscriber would."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import time_machine
import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError

from tests.conftest import MovableClock


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified_with: list[str]
    """Which of the receiver's secrets verified it (none: the receiver answered 401)."""

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    clock: MovableClock
    secrets: list[str] = field(default_factory=list)
    """Secrets to verify with; set once a subscription is made."""
    answers: list[int] = field(default_factory=list)
    """Statuses to answer, in turn; 200 once they run out."""
    received: list[Received] = field(default_factory=list)
    hold: asyncio.Event | None = None
    """When set to an Event, the next request waits for it before answering (a call in flight)."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    def verify(self, body: bytes, headers: dict[str, str]) -> list[str]:
        """The library checks timestamps against the wall clock: it reads the service's clock here,
        as a real receiver's clock would agree with the sender's."""
        good = []
        with time_machine.travel(self.clock.now(), tick=False):
            for secret in self.secrets:
                try:
                    Webhook(secret).verify(body, headers)
                except WebhookVerificationError:
                    continue
                good.append(secret)
        return good

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        received = Received(headers, body, self.verify(body, headers))
        self.received.append(received)
        self.arrived.set()
        if self.hold is not None:
            hold, self.hold = self.hold, None
            await hold.wait()
        status = (self.answers.pop(0) if self.answers else 200) if received.verified_with else 401
        answer = json.dumps({"seen": received.webhook_id}).encode()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": answer})


@asynccontextmanager
async def serve(clock: MovableClock) -> AsyncIterator[Receiver]:
    """Start a receiver on a free port of 127.0.0.1; stop it on the way out."""
    receiver = Receiver(clock)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(receiver, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()
