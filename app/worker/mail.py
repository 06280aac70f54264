"""Mail, sent by the worker from the outbox: claim and commit, send (no transaction open while the
SMTP server answers), then record the outcome in a new transaction. A worker that dies mid-send
leaves its claim to expire; another then sends the message again (at least once).

`PARTNERS_MAIL=smtp`: through `aiosmtplib` to the configured server; `folder` (the development
default): each message written to `PARTNERS_MAIL_DIR` as an `.eml` file and logged.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from app.db.repositories import mail as repo
from app.db.repositories import worker as leases
from app.db.session import unit_of_work
from app.db.tables import MailMessage
from app.domain import mail, notifications
from app.domain.subscriptions import Holes
from app.worker.runner import TASKS, Worker

log = logging.getLogger("app.worker")
BATCH = 20
CLAIM = timedelta(minutes=2)
SMTP_TIMEOUT = 30.0


async def send_mail(worker: Worker) -> int:
    settings = worker.settings
    if settings.mail_mode == "off":
        return 0
    now = worker.clock.now()
    async with worker.reading() as session:
        if not await repo.any_due(session, now):
            return 0
    async with unit_of_work(worker.factory) as session:
        rows = await repo.claim(session, now, worker=worker.name, until=now + CLAIM, limit=BATCH)
        messages = [(row, mail.message(settings, row)) for row in rows]
    outcomes = await asyncio.gather(*(_send(worker, row, made) for row, made in messages), return_exceptions=True)
    async with unit_of_work(worker.factory) as session:
        at = worker.clock.now()
        for (row, _), outcome in zip(messages, outcomes, strict=True):
            assert row.id is not None
            if isinstance(outcome, BaseException):
                attempts = row.attempts + 1
                error = f"{outcome.__class__.__name__}: {outcome}"
                log.warning("mail %s to %s: attempt %s failed: %s", row.id, row.to_address, attempts, error)
                await repo.failed(
                    session, row.id, worker.name, error=error, attempts=attempts, retry_at=mail.retry_at(attempts, at)
                )
            else:
                await repo.sent(session, row.id, worker.name, at)
    return len(messages)


def _write(folder: Path, name: str, made: EmailMessage) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(bytes(made))
    return path


async def _send(worker: Worker, row: MailMessage, made: EmailMessage) -> None:
    settings = worker.settings
    if settings.mail_mode == "folder":
        path = await asyncio.to_thread(_write, Path(settings.mail_folder), f"{row.id:08d}-{row.template}.eml", made)
        log.info("mail %s to %s (%s) written to %s", row.id, row.to_address, row.subject, path)
        return
    await aiosmtplib.send(
        made,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        use_tls=settings.smtp_tls == "implicit",
        start_tls=settings.smtp_tls == "starttls",
        timeout=SMTP_TIMEOUT,
    )


TASKS.append(send_mail)


_holes: weakref.WeakKeyDictionary[Worker, Holes] = weakref.WeakKeyDictionary()


async def notify(worker: Worker) -> int:
    """Turn new domain events into notifications, under the notifier's lease (one worker at a time)."""
    async with worker.reading() as session:
        if not await notifications.due(session):
            return 0
    now = worker.clock.now()
    holes = _holes.setdefault(worker, Holes(grace=worker.settings.notify_hole_grace_seconds))
    async with unit_of_work(worker.factory) as session:
        if not await leases.take_lease(session, notifications.CURSOR, worker.name, now, now + worker.lease):
            return 0
        return await notifications.notify(session, worker.settings, now, holes, asyncio.get_running_loop().time())


TASKS.append(notify)
