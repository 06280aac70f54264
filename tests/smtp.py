"""A real SMTP server for the tests: aiosmtpd's SMTP protocol, served by the test's own event loop on a
free port of 127.0.0.1 (aiosmtpd's `Controller` cannot bind port 0), so parallel test workers never
collide. It keeps every message it accepts, and can refuse the next ones on purpose."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Mailbox:
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    refuse: int = 0
    """How many of the next messages to refuse (550), as a failing server would."""
    refused: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return "550 5.7.1 Refused by the test's server"
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def text(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())

    @staticmethod
    def html(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("html",))
        assert part is not None
        return str(part.get_content())

    def link_token(self, message: EmailMessage) -> str:
        """The `token` of the link a message carries (an invitation's, a password reset's)."""
        found = re.search(r"https?://\S+\?token=([A-Za-z0-9_-]+)", self.text(message))
        assert found, self.text(message)
        return found.group(1)


@asynccontextmanager
async def smtp_server() -> AsyncIterator[Mailbox]:
    box = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(box, hostname="tests.localhost"), "127.0.0.1", 0)
    box.port = server.sockets[0].getsockname()[1]
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()


def smtp_settings(box: Mailbox) -> dict[str, Any]:
    return {
        "mail": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": box.port,
        "smtp_tls": "none",
        "mail_from": "Qalyptus Partner Program <partners@qalyptus.example.com>",
        "public_url": "https://partners.qalyptus.example.com",
    }
