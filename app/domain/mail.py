"""Mail the program sends: rendered from its templates (Jinja2, text and HTML, in the program's words),
put in the outbox in the caller's transaction, and sent by a worker (`app.worker.mail`): claimed,
sent outside any transaction, retried with backoff. The outbox is the mail log admins read.

The templates are in `app/templates/mail/`: `<name>.txt` (its first line `Subject: ...`, then the
text) and `<name>.html` (the HTML body, laid out by `_layout.html`).
"""

from __future__ import annotations

import email.utils
import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import mail as repo
from app.db.tables import MailMessage
from app.domain import sealed
from app.settings import Settings

MAX_ATTEMPTS = 8
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
)
"""The pause after each failed attempt; after the last attempt the message is `failed` (kept, and an
admin can send it again)."""


class Template(StrEnum):
    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a template's name
    PARTNER_APPROVED = "partner_approved"
    LEAD_OFFERED = "lead_offered"
    REGISTRATION_EXPIRING = "registration_expiring"
    REGISTRATION_EXPIRED = "registration_expired"
    STATEMENT_READY = "statement_ready"
    STATEMENT_PAID = "statement_paid"
    LEVEL_CHANGED = "level_changed"
    DIRECTORY_REVIEWED = "directory_reviewed"
    PAYEE_CHANGED = "payee_changed"


ACCOUNT_MAIL = frozenset({Template.INVITATION, Template.PASSWORD_RESET})
"""Sent whatever the user's notification settings: they are how the account is reached."""


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("app", "templates/mail"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(template: Template, values: dict[str, Any]) -> Rendered:
    """The message of `template` with `values`: subject, text and HTML."""
    env = _environment()
    values = {"name": None, **values}
    text = env.get_template(f"{template}.txt").render(values)
    first, _, rest = text.partition("\n")
    assert first.startswith("Subject: "), f"{template}.txt starts with its subject line"
    subject = " ".join(first.removeprefix("Subject: ").split())
    body = Markup(env.get_template(f"{template}.html").render(values))  # noqa: S704 - rendered with autoescape
    html = env.get_template("_layout.html").render(subject=subject, body=body, switchable=template not in ACCOUNT_MAIL)
    return Rendered(subject, rest.strip() + "\n", html)


def enqueue(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    *,
    to: str,
    template: Template,
    values: dict[str, Any],
    user_id: uuid.UUID | None = None,
    refs: dict[str, Any] | None = None,
) -> MailMessage:
    """Put a message in the outbox, in the caller's transaction: it is sent once that commits. The
    bodies are kept encrypted (a message may carry a single-use link). With mail off it is logged as
    `off` and never sent."""
    made = render(template, values)
    row = MailMessage(
        to_address=to,
        user_id=user_id,
        template=str(template),
        subject=made.subject,
        text_body=sealed.seal(settings, made.text),
        html_body=sealed.seal(settings, made.html),
        state="off" if settings.mail_mode == "off" else "pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        refs={k: str(v) for k, v in (refs or {}).items()},
    )
    repo.add(session, row)
    return row


def message(settings: Settings, row: MailMessage) -> EmailMessage:
    """The message to send, as MIME: text, and HTML as its alternative."""
    made = EmailMessage()
    made["From"] = settings.mail_from
    made["To"] = row.to_address
    made["Subject"] = row.subject
    made["Date"] = email.utils.format_datetime(row.created_at)
    made["Message-ID"] = email.utils.make_msgid(idstring=f"mail-{row.id}", domain=_domain(settings.mail_from))
    made.set_content(sealed.open_sealed(settings, row.text_body))
    made.add_alternative(sealed.open_sealed(settings, row.html_body), subtype="html")
    return made


def _domain(sender: str) -> str:
    address = email.utils.parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def retry_at(attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed attempts; None once the last has failed."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return now + BACKOFF[min(attempts, len(BACKOFF)) - 1]


async def log(
    session: AsyncSession, limit: int, *, before: int | None, state: str | None, to: str | None
) -> list[MailMessage]:
    """The mail log, newest first."""
    return list(await repo.log(session, limit, before=before, state=state, to=to.lower() if to else None))


async def retry(session: AsyncSession, ctx: Any, message_id: int) -> MailMessage:
    """Send a `failed` message again, now."""
    from app.domain import audit
    from app.domain.errors import InvalidTransition, NotFound

    row = await repo.get(session, message_id)
    if row is None:
        raise NotFound(f"No message {message_id}.", code="mail_not_found")
    if row.state != "failed":
        raise InvalidTransition(
            f"Message {message_id} is {row.state}: only a failed one is sent again.", code="mail_not_failed"
        )
    row.state, row.next_attempt_at, row.attempts = "pending", ctx.now, 0
    await session.flush()
    audit.record(session, ctx, action="mail.retried", object_type="mail", object_id=message_id)
    return row


async def failed_count(session: AsyncSession) -> int:
    """Messages given up on after their last attempt, waiting for an admin to send them again."""
    return await repo.count_in_state(session, "failed")
