"""Deal registration: partners record prospective customers before they buy (R05-R07)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import customers as customers_repo
from app.db.repositories import partners as partners_repo
from app.db.tables import Registration, RegistrationRefusal
from app.domain import audit, customers, events, identifiers, partners, terms
from app.domain.context import Context
from app.domain.errors import Conflict, Invalid, InvalidTransition, NotFound
from app.domain.rules.identifiers import strong_identifiers
from app.domain.rules.partner_status import PartnerStatus


class RegistrationRefused(Conflict):
    """R06: a conflict with the customer's situation; the refusal itself is kept."""

    title = "Registration refused"


@dataclass(frozen=True)
class Prospect:
    company: str
    country: str
    contact_name: str
    contact_email: str
    vat_id: str | None = None
    domain: str | None = None
    store_customer_id: str | None = None


def effective_state(registration: Registration, now: datetime) -> str:
    """A live registration whose window has ended is expired, whether or not a sweep wrote it."""
    if registration.state == "live" and registration.expires_at <= now:
        return "expired"
    return registration.state


def days_left(registration: Registration, now: datetime) -> int:
    if effective_state(registration, now) not in ("live", "offered"):
        return 0
    return max(0, math.ceil((registration.expires_at - now) / timedelta(days=1)))


async def register(
    session: AsyncSession,
    ctx: Context,
    partner_id: uuid.UUID,
    prospect: Prospect,
    *,
    offer_until: datetime | None = None,
) -> Registration:
    """Register a prospective customer for the partner, or refuse with the reason (R05-R07).

    With `offer_until` the registration is `offered` (lead routing, R19): it holds the customer for
    the partner until then, and its R07 window starts only when the partner accepts.
    """
    partner = await partners_repo.get(session, partner_id)
    if partner is None:
        raise NotFound(f"No partner {partner_id}.", code="partner_not_found")
    if partner.status != PartnerStatus.ACTIVE:
        raise InvalidTransition(
            f"A partner that is {partner.status} cannot register customers.", code="partner_not_active"
        )
    check = strong_identifiers(
        country=prospect.country,
        vat_id=prospect.vat_id,
        email=prospect.contact_email,
        domain=prospect.domain,
        store_customer_id=prospect.store_customer_id,
    )
    if not check.identifiers:
        if check.free_mail_domain:
            raise Invalid(
                f"{check.free_mail_domain} is a free-mail domain and does not identify a company; give "
                "vat_id, the company's own domain or store_customer_id.",
                code="free_mail_domain_only",
                missing=["vat_id", "domain", "store_customer_id"],
            )
        raise Invalid(
            "A registration needs at least one strong identifier: vat_id, a business e-mail domain "
            "(domain, or the contact's e-mail at the company) or store_customer_id.",
            code="strong_identifier_missing",
            missing=["vat_id", "domain", "store_customer_id"],
        )
    partners.checked_vat(prospect.vat_id, prospect.country)
    in_force = await terms.in_force(session, ctx.now)
    labels = [f"{i.kind}:{i.value}" for i in check.identifiers]

    async def refuse(code: str, detail: str, customer_id: uuid.UUID | None) -> RegistrationRefused:
        customers_repo.add_refusal(
            session,
            RegistrationRefusal(
                partner_id=partner_id,
                customer_id=customer_id,
                code=code,
                detail=detail,
                company=prospect.company,
                identifiers=labels,
                refused_at=ctx.now,
            ),
        )
        await session.flush()
        return RegistrationRefused(detail, code=code, keep_writes=True)

    own = (await identifiers.own_identifiers(session, partner)).matches(check.identifiers)
    if own is not None:  # R22: checked before the customer is looked up, so no customer row is made
        detail = f"This is your own company ({own}): a partner's own company is never its customer."
        customers_repo.add_refusal(
            session,
            RegistrationRefusal(
                partner_id=partner_id,
                code="own_company",
                detail=detail,
                company=prospect.company,
                identifiers=labels,
                refused_at=ctx.now,
            ),
        )
        await session.flush()
        raise Invalid(detail, code="own_company", keep_writes=True)
    try:
        customer = await customers.resolve(
            session, company=prospect.company, country=prospect.country, identifiers=check.identifiers, now=ctx.now
        )
    except customers.AmbiguousCustomer as exc:
        raise await refuse(exc.code, exc.detail, None) from exc
    if customers.is_existing(customer):
        raise await refuse("already_a_customer", "This customer has already bought from the vendor.", customer.id)
    if customer.sales_process_until is not None and customer.sales_process_until > ctx.now:
        raise await refuse(
            "in_active_sales_process",
            f"The vendor is in an active sales process with this customer until "
            f"{customer.sales_process_until.date().isoformat()}.",
            customer.id,
        )
    for ended in await customers_repo.due_to_expire(session, ctx.now, customer_id=customer.id):
        _expire(session, ended, ctx.now)
    await session.flush()
    for open_registration in await customers_repo.open_registrations(session, customer.id):
        if open_registration.partner_id == partner_id:
            raise await refuse(
                "already_registered_by_you",
                f"You registered this customer already; it is valid until {open_registration.expires_at.isoformat()}.",
                customer.id,
            )
        raise await refuse(
            "registered_by_another_partner", "Another partner has a live registration for this customer.", customer.id
        )
    previous = await customers_repo.last_expired(session, partner_id, customer.id)
    if previous is not None:
        cooloff_end = previous.expires_at + timedelta(days=in_force.terms.registration_cooloff_days)
        if cooloff_end > ctx.now:
            raise await refuse(
                "cool_off",
                f"Your registration of this customer expired unconverted; you may register it again from "
                f"{cooloff_end.isoformat()}.",
                customer.id,
            )
    registration = Registration(
        partner_id=partner_id,
        customer_id=customer.id,
        state="offered" if offer_until else "live",
        registered_at=ctx.now,
        expires_at=offer_until or ctx.now + timedelta(days=in_force.terms.registration_window_days),
        terms_version=in_force.version,
        company=prospect.company,
        country=prospect.country,
        contact_name=prospect.contact_name,
        contact_email=prospect.contact_email,
        vat_id=prospect.vat_id,
        domain=prospect.domain,
        store_customer_id=prospect.store_customer_id,
    )
    try:
        async with session.begin_nested():
            session.add(registration)
    except IntegrityError as exc:  # the unique index on open registrations: someone won the race
        raise await refuse(
            "registered_by_another_partner", "Another partner has a live registration for this customer.", customer.id
        ) from exc
    audit.record(
        session,
        ctx,
        action="registration.created",
        object_type="registration",
        object_id=registration.id,
        after={
            "partner_id": str(partner_id),
            "customer_id": str(customer.id),
            "identifiers": labels,
            "expires_at": registration.expires_at.isoformat(),
        },
    )
    events.record(
        session,
        "registration.created",
        events.RegistrationFacts(
            registration_id=registration.id,
            partner_id=partner_id,
            customer_id=customer.id,
            company=registration.company,
            country=registration.country,
            state=registration.state,
            registered_at=registration.registered_at,
            expires_at=registration.expires_at,
        ),
        occurred_at=ctx.now,
        partner_id=partner_id,
        subject=subject(registration),
        refs={"customer_id": customer.id},
    )
    return registration


def subject(registration: Registration) -> str:
    return f"registration:{registration.id}"


def record_ended(session: AsyncSession, registration: Registration, *, reason: str | None = None) -> None:
    """`registration.converted`, `.expired` or `.withdrawn`, from the registration's new state."""
    assert registration.ended_at is not None
    kinds: dict[str, events.EventType] = {
        "converted": "registration.converted",
        "expired": "registration.expired",
        "withdrawn": "registration.withdrawn",
    }
    events.record(
        session,
        kinds[registration.state],
        events.RegistrationEnded(
            registration_id=registration.id,
            partner_id=registration.partner_id,
            company=registration.company,
            state=registration.state,
            ended_at=registration.ended_at,
            order_id=registration.converted_order_id,
            reason=reason,
        ),
        occurred_at=registration.ended_at,
        partner_id=registration.partner_id,
        subject=subject(registration),
        refs={"customer_id": registration.customer_id},
    )


def _expire(session: AsyncSession, registration: Registration, now: datetime) -> None:
    registration.state, registration.ended_at = "expired", registration.expires_at
    record_ended(session, registration)


async def for_partner(
    session: AsyncSession, partner_id: uuid.UUID, *, states: Sequence[str] | None = None, now: datetime
) -> list[Registration]:
    """The partner's registrations, newest first, filtered by their state as of now."""
    rows = await customers_repo.partner_registrations(session, partner_id, states=None)
    if states:
        rows = [r for r in rows if effective_state(r, now) in states]
    return list(rows)


async def get(session: AsyncSession, partner_id: uuid.UUID, registration_id: uuid.UUID) -> Registration:
    """One of the partner's registrations; another partner's is not found, as if it did not exist."""
    registration = await customers_repo.registration(session, registration_id)
    if registration is None or registration.partner_id != partner_id:
        raise NotFound(f"No registration {registration_id}.", code="registration_not_found")
    return registration


async def withdraw(
    session: AsyncSession, ctx: Context, partner_id: uuid.UUID, registration_id: uuid.UUID
) -> Registration:
    """The partner gives up a live registration; the customer is free for others at once."""
    registration = await customers_repo.registration(session, registration_id, for_update=True)
    if registration is None or registration.partner_id != partner_id:
        raise NotFound(f"No registration {registration_id}.", code="registration_not_found")
    state = effective_state(registration, ctx.now)
    if state not in ("live", "offered"):
        raise InvalidTransition(f"A registration that is {state} cannot be withdrawn.", code="registration_not_open")
    registration.state = "withdrawn"
    registration.ended_at = ctx.now
    record_ended(session, registration, reason="withdrawn by the partner")
    await session.flush()
    audit.record(
        session,
        ctx,
        action="registration.withdrawn",
        object_type="registration",
        object_id=registration.id,
        before={"state": state},
        after={"state": "withdrawn"},
    )
    return registration


async def refusals(
    session: AsyncSession, *, partner_id: uuid.UUID | None, code: str | None, before_id: int | None, limit: int
) -> Sequence[RegistrationRefusal]:
    """Refused registrations, newest first (R06: kept for the dashboards)."""
    return await customers_repo.refusals(session, partner_id=partner_id, code=code, before_id=before_id, limit=limit)


async def expire_due(session: AsyncSession, now: datetime, *, limit: int = 500) -> int:
    """Write `expired` on live registrations whose window has ended (reads already treat them so),
    with a `registration.expired` event each; returns how many."""
    due = await customers_repo.due_to_expire(session, now, limit=limit)
    for registration in due:
        _expire(session, registration, now)
    await session.flush()
    return len(due)


EXPIRING_NOTICE = timedelta(days=7)


async def notify_expiring(session: AsyncSession, now: datetime, *, limit: int = 500) -> int:
    """`registration.expiring` once for each live registration whose window ends within 7 days."""
    candidates = await customers_repo.expiring(session, now, EXPIRING_NOTICE)
    by_subject = {subject(r): r for r in candidates}
    due = (await events.without(session, "registration.expiring", list(by_subject)))[:limit]
    for key in due:
        registration = by_subject[key]
        events.record(
            session,
            "registration.expiring",
            events.RegistrationExpiring(
                registration_id=registration.id,
                partner_id=registration.partner_id,
                company=registration.company,
                expires_at=registration.expires_at,
            ),
            occurred_at=now,
            partner_id=registration.partner_id,
            subject=key,
        )
    return len(due)


async def accept_offered(session: AsyncSession, ctx: Context, registration_id: uuid.UUID) -> Registration:
    """R19: an offered registration becomes live; its R07 window starts now."""
    registration = await customers_repo.registration(session, registration_id, for_update=True)
    if registration is None or registration.state != "offered":
        raise InvalidTransition("The offer is no longer open.", code="offer_not_open")
    window = (await terms.in_force(session, ctx.now)).terms.registration_window_days
    registration.state, registration.registered_at = "live", ctx.now
    registration.expires_at = ctx.now + timedelta(days=window)
    await session.flush()
    return registration


async def withdraw_offered(
    session: AsyncSession, registration_id: uuid.UUID, at: datetime, *, reason: str | None = None
) -> None:
    registration = await customers_repo.registration(session, registration_id, for_update=True)
    if registration is not None and registration.state == "offered":
        registration.state, registration.ended_at = "withdrawn", at
        record_ended(session, registration, reason=reason)
        await session.flush()
