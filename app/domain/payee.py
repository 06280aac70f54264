"""Payee details: the name, address, bank account and VAT standing a partner is paid under, kept by
the partner (or an admin for it); and whether a partner is payable at a moment.

Each change adds a version (the history says what was in force when). The IBAN and BIC are stored
encrypted (PARTNERS_SECRETS_KEY); answers, the audit log and events show the IBAN masked. A change of
bank details, the first ones included, holds the partner's payouts for PARTNERS_PAYOUT_HOLD_DAYS.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography.fernet import InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import partners as partners_repo
from app.db.repositories import payee as repo
from app.db.tables import PayeeDetails
from app.domain import audit, events, partners, sealed
from app.domain.context import Context
from app.domain.errors import Forbidden, Invalid, NotFound
from app.domain.rules import payee as rules
from app.domain.rules.partner_status import PartnerStatus
from app.settings import Settings

DETAIL_FIELDS = (
    "legal_name",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "vat_id",
    "vat_registered",
)
BANK_FIELDS = ("iban", "bic")
AUDIT_FIELDS = (*DETAIL_FIELDS, "iban_masked", "bank_changed_at", "payouts_held_until")
"""What the audit log keeps of a version: never the IBAN itself."""


@dataclass(frozen=True)
class PayeeInput:
    """Payee details as a caller gives them (a PUT: every field)."""

    legal_name: str
    address_line1: str
    address_line2: str | None
    postal_code: str | None
    city: str
    country: str
    iban: str
    bic: str
    vat_id: str | None
    vat_registered: bool


Outcome = Literal["created", "changed", "unchanged"]
"""What a PUT did: the partner's first payee details, a change of them, or nothing."""


@dataclass(frozen=True)
class Payee:
    """A partner's payee details in force, as answered: the IBAN masked, the BIC opened."""

    details: PayeeDetails
    bic: str
    payouts_held_until: datetime | None
    """The hold still running at the moment asked; null once it has passed."""
    held_because: str | None
    payability: rules.Payability


async def get(session: AsyncSession, settings: Settings, partner_id: uuid.UUID, now: datetime) -> Payee:
    """The partner's payee details in force now, or NotFound."""
    await partners.get(session, partner_id)
    row = await repo.details_at(session, partner_id)
    if row is None:
        raise NotFound(f"Partner {partner_id} has no payee details yet.", code="payee_details_not_found")
    return await _answer(session, settings, row, now)


async def put(
    session: AsyncSession, ctx: Context, settings: Settings, partner_id: uuid.UUID, given: PayeeInput
) -> tuple[Payee, Outcome]:
    """Record the partner's payee details; the same details again record nothing. Returns them and
    what was done. A change of bank details holds the partner's payouts (PARTNERS_PAYOUT_HOLD_DAYS)."""
    # The partner's row is locked, so two changes of its payee details are made one after the other.
    partner = await partners_repo.get(session, partner_id, for_update=True)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    if partner.status == PartnerStatus.TERMINATED:
        raise Forbidden("A terminated partner's payee details are closed.", code="partner_terminated")
    account = rules.bank_account(given.iban, given.bic)
    if isinstance(account, rules.Refusal):
        raise Invalid(account.detail, code=account.code, field=account.field)
    vat_id = partners.checked_vat(given.vat_id, given.country)
    if given.vat_registered and vat_id is None:
        raise Invalid("A VAT-registered payee gives its VAT id.", code="vat_id_required", field="vat_id")
    values: dict[str, Any] = {
        "legal_name": given.legal_name,
        "address_line1": given.address_line1,
        "address_line2": given.address_line2,
        "postal_code": given.postal_code,
        "city": given.city,
        "country": given.country,
        "vat_id": vat_id,
        "vat_registered": given.vat_registered,
    }
    previous = await repo.details_at(session, partner_id)
    changed = [name for name in DETAIL_FIELDS if previous is None or getattr(previous, name) != values[name]]
    bank_before = _bank(settings, previous) if previous is not None else (None, None)
    changed += [
        name for name, old, new in zip(BANK_FIELDS, bank_before, (account.iban, account.bic), strict=True) if old != new
    ]
    if previous is not None and not changed:
        return await _answer(session, settings, previous, ctx.now), "unchanged"
    bank_changed = any(name in BANK_FIELDS for name in changed)
    if bank_changed:
        bank_changed_at = ctx.now
        held = [ctx.now + timedelta(days=settings.payout_hold_days)] if settings.payout_hold_days else []
        if previous is not None and previous.payouts_held_until is not None:
            held.append(previous.payouts_held_until)  # a hold already running is never shortened
        held_until = max((h for h in held if h > ctx.now), default=None)
    else:
        assert previous is not None
        bank_changed_at, held_until = previous.bank_changed_at, previous.payouts_held_until
    row = PayeeDetails(
        partner_id=partner_id,
        **values,
        iban=sealed.seal(settings, account.iban),
        bic=sealed.seal(settings, account.bic),
        iban_masked=account.iban_masked,
        recorded_at=ctx.now,
        recorded_by=ctx.actor,
        bank_changed_at=bank_changed_at,
        payouts_held_until=held_until,
    )
    repo.add_details(session, row)
    await session.flush()
    audit.record(
        session,
        ctx,
        action="payee.changed",
        object_type="partner",
        object_id=partner_id,
        before=_audited(previous, bank_before[1]) if previous is not None else None,
        after={**_audited(row, account.bic), "changed": changed},
    )
    events.record(
        session,
        "payee.changed",
        events.PayeeChanged(
            partner_id=partner_id,
            changed=changed,
            bank_details_changed=bank_changed,
            payouts_held_until=held_until if held_until is not None and held_until > ctx.now else None,
            self_billing_version=None,
            by=ctx.actor,
        ),
        occurred_at=ctx.now,
        partner_id=partner_id,
        subject=f"partner:{partner_id}",
        refs={"payee_details_id": row.id},
    )
    return await _answer(session, settings, row, ctx.now), "created" if previous is None else "changed"


async def payability(session: AsyncSession, partner_id: uuid.UUID, at: datetime) -> rules.Payability:
    """Whether the partner is payable at `at`, from its payee details and self-billing acceptances as
    they stood then; every reason when not."""
    row = await repo.details_at(session, partner_id, at)
    current = await repo.current_version(session, at)
    accepted = {name for _, name in await repo.acceptances(session, partner_id, at)}
    return rules.payability(
        at=at,
        details=rules.PayeeFacts(row.recorded_at, row.payouts_held_until) if row is not None else None,
        current_self_billing=current.version if current is not None else None,
        accepted_self_billing=accepted,
    )


async def payability_of(
    session: AsyncSession, partner_ids: Sequence[uuid.UUID], at: datetime
) -> dict[uuid.UUID, rules.Payability]:
    """`payability` for many partners, in a statement or two per few thousand partners."""
    rows = await repo.details_of(session, partner_ids, at)
    current = await repo.current_version(session, at)
    accepted = await repo.accepted_versions(session, partner_ids, at)
    return {
        partner_id: rules.payability(
            at=at,
            details=rules.PayeeFacts(row.recorded_at, row.payouts_held_until)
            if (row := rows.get(partner_id))
            else None,
            current_self_billing=current.version if current is not None else None,
            accepted_self_billing=accepted.get(partner_id, set()),
        )
        for partner_id in partner_ids
    }


async def _answer(session: AsyncSession, settings: Settings, row: PayeeDetails, now: datetime) -> Payee:
    held_until = row.payouts_held_until if row.payouts_held_until is not None and row.payouts_held_until > now else None
    because = None
    if held_until is not None:
        days = (held_until - row.bank_changed_at).days
        because = (
            f"The bank details changed at {row.bank_changed_at.isoformat()}: payouts are held for {days} days, "
            "in case the account was taken over."
        )
    bic = sealed.open_sealed(settings, row.bic)  # a removed key still sealing data is the operator's to fix
    return Payee(row, bic, held_until, because, await payability(session, row.partner_id, now))


def _bank(settings: Settings, row: PayeeDetails) -> tuple[str | None, str | None]:
    """The version's IBAN and BIC in clear; None for one no key of PARTNERS_SECRETS_KEY opens (a
    removed key): it then counts as changed by the next version."""
    opened: list[str | None] = []
    for token in (row.iban, row.bic):
        try:
            opened.append(sealed.open_sealed(settings, token))
        except InvalidToken:
            opened.append(None)
    return opened[0], opened[1]


def _audited(row: PayeeDetails, bic: str | None) -> dict[str, Any]:
    return {**audit.snapshot(row, AUDIT_FIELDS), "bic": bic}
