"""Notifications: the program tells people what concerns them, by mail. A reader of the domain-event log
(like the outbound-webhook fan-out, with a cursor of its own) turns each event that people are told
about into messages for the users whose role it concerns, leaving out those who turned it off.

Approving a partner (by a partner manager, or automatically) also invites the contact e-mail of its
registration as the partner's first owner.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import events as events_repo
from app.db.repositories import partners as partners_repo
from app.db.repositories import people as people_repo
from app.db.repositories import subscriptions as cursors
from app.db.tables import DomainEvent, Partner, User
from app.domain import mail, people
from app.domain.context import Caller, Context
from app.domain.errors import DomainError
from app.domain.rules import roles
from app.domain.rules.roles import Permission, Role
from app.domain.subscriptions import Holes
from app.settings import Settings

log = logging.getLogger("app.notifications")
CURSOR = "notifications"
"""The notifier's cursor in `event_cursors` and its lease in `worker_leases`."""


def _day(value: Any) -> str:
    return str(value)[:10] if value else ""


def _minute(value: Any) -> str | None:
    return str(value)[:16].replace("T", " ") + " UTC" if value else None


def _money(minor: Any) -> str:
    amount = int(minor or 0)
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"


def _may(permission: Permission) -> Callable[[Role], bool]:
    return lambda role: roles.may(role, permission)


@dataclass(frozen=True)
class Rule:
    template: mail.Template
    concerns: Callable[[Role], bool]
    """Which of the partner's users are told."""
    values: Callable[[dict[str, Any]], dict[str, Any]]


RULES: dict[str, Rule] = {
    "partner.approved": Rule(mail.Template.PARTNER_APPROVED, _may(Permission.PROFILE_READ), lambda p: {"level": None}),
    "partner.level_changed": Rule(
        mail.Template.LEVEL_CHANGED,
        _may(Permission.PROFILE_READ),
        lambda p: {"previous": p.get("from_level"), "level": p.get("to_level"), "points": p.get("points")},
    ),
    "lead.offered": Rule(
        mail.Template.LEAD_OFFERED,
        _may(Permission.LEADS_WRITE),
        lambda p: {"company": p.get("company"), "country": p.get("country"), "deadline": _minute(p.get("deadline"))},
    ),
    "registration.expiring": Rule(
        mail.Template.REGISTRATION_EXPIRING,
        _may(Permission.REGISTRATIONS_WRITE),
        lambda p: {"company": p.get("company"), "expires": _day(p.get("expires_at"))},
    ),
    "registration.expired": Rule(
        mail.Template.REGISTRATION_EXPIRED,
        _may(Permission.REGISTRATIONS_WRITE),
        lambda p: {"company": p.get("company"), "expires": _day(p.get("ended_at"))},
    ),
    "statement.approved": Rule(
        mail.Template.STATEMENT_READY,
        _may(Permission.STATEMENTS_READ),
        lambda p: {
            "quarter": p.get("quarter"),
            "amount": _money(p.get("payable_amount")),
            "currency": p.get("currency"),
            "payout_date": _day(p.get("payout_date")),
        },
    ),
    "statement.paid": Rule(
        mail.Template.STATEMENT_PAID,
        _may(Permission.STATEMENTS_READ),
        lambda p: {
            "quarter": p.get("quarter"),
            "amount": _money(p.get("payable_amount")),
            "currency": p.get("currency"),
            "reference": p.get("payment_reference"),
        },
    ),
    "directory_text.approved": Rule(
        mail.Template.DIRECTORY_REVIEWED,
        _may(Permission.DIRECTORY_WRITE),
        lambda p: {"outcome": "approved", "reason": None},
    ),
    "directory_text.rejected": Rule(
        mail.Template.DIRECTORY_REVIEWED,
        _may(Permission.DIRECTORY_WRITE),
        lambda p: {"outcome": "rejected", "reason": p.get("reason")},
    ),
    "payee.changed": Rule(
        mail.Template.PAYEE_CHANGED,
        lambda role: role is Role.OWNER,  # a security notice: to the partner's owners
        lambda p: {
            "changed": ", ".join(p.get("changed") or []).replace("_", " "),
            "by": p.get("by"),
            "held_until": _minute(p.get("payouts_held_until")),
        },
    ),
}
"""The events people are told about: the message, whom of the partner's users it concerns, and what
it says."""


async def due(session: AsyncSession) -> bool:
    """Whether the log holds events the notifier has not read (a read: an idle worker writes nothing)."""
    return await cursors.newest_event_id(session) > await cursors.read_cursor(session, CURSOR)


async def notify(
    session: AsyncSession, settings: Settings, now: datetime, holes: Holes, wall: float, *, limit: int = 200
) -> int:
    """Read the events past the cursor, in order, and put their messages in the outbox (the caller holds
    the notifier's lease). Stops at a hole in the log until it may pass it (a transaction still under
    way may yet fill it). Returns how many events it read."""
    position = await cursors.cursor(session, CURSOR)
    new = await events_repo.after(session, position, limit=limit)
    reached = position
    partners: dict[uuid.UUID, Partner | None] = {}
    for event in new:
        assert event.id is not None
        if event.id != reached + 1 and not holes.may_pass(reached + 1, wall):
            break
        await _event(session, settings, now, event, partners)
        reached = event.id
    if reached > position:
        await cursors.move_cursor(session, CURSOR, reached)
    return reached - position


async def _event(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    event: DomainEvent,
    partners: dict[uuid.UUID, Partner | None],
) -> None:
    payload = dict(event.payload or {})
    kind = event.type
    if kind == "partner.registered" and payload.get("status") == "active":
        kind = "partner.approved"  # approved automatically as it registered
    rule = RULES.get(kind)
    if rule is None or event.partner_id is None:
        return
    if event.partner_id not in partners:
        partners[event.partner_id] = await partners_repo.get(session, event.partner_id)
    partner = partners[event.partner_id]
    if partner is None:
        return
    if kind == "partner.approved":
        await _invite_first_owner(session, settings, now, partner)
    for user in await people_repo.active_users_of(session, [partner.id]):
        if not rule.concerns(Role(user.role)) or not _wants(user, rule.template):
            continue
        mail.enqueue(
            session,
            settings,
            now,
            to=user.email,
            template=rule.template,
            values={"name": user.name, "partner": partner.company, **rule.values(payload)},
            user_id=user.id,
            refs={"event_id": event.id, "partner_id": partner.id},
        )


def _wants(user: User, template: mail.Template) -> bool:
    return template in mail.ACCOUNT_MAIL or user.notifications.get(template.value, True)


async def _invite_first_owner(session: AsyncSession, settings: Settings, now: datetime, partner: Partner) -> None:
    """The approved partner's registration contact becomes its first owner, unless it has users already
    or the address is another account's."""
    if await people_repo.count_of_partner(session, partner.id) > 0:
        return
    ctx = Context(Caller(kind="system"), now)
    try:
        async with session.begin_nested():
            await people.invite(
                session, ctx, settings, None, email=partner.contact_email, role=Role.OWNER, partner_id=partner.id
            )
    except DomainError as refused:  # the address is another account's: an admin invites someone else
        log.warning("partner %s approved: its contact was not invited as owner: %s", partner.id, refused.detail)
