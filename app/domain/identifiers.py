"""R22: the identifiers of its own company a partner declared, kept with their dates.

Shared by every use case that changes a partner's website, VAT id or contact e-mail (its profile and
its directory profile) and by those that check a company against the partner's own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import partners as repo
from app.db.tables import Partner, PartnerIdentifier
from app.domain.rules.identifiers import Identifier, OwnCompany, declared_identifiers


def declared_now(partner: Partner) -> frozenset[Identifier]:
    return declared_identifiers(
        country=partner.country, vat_id=partner.vat_id, website=partner.website, contact_email=partner.contact_email
    )


async def own_identifiers(session: AsyncSession, partner: Partner) -> OwnCompany:
    """R22: the partner's own company's identifiers: what its profile declares now and everything it
    declared before (a value waiting for review is declared)."""
    return own_company_of(partner, await repo.declared_identifiers(session, partner.id))


def own_company_of(partner: Partner, history: list[tuple[str, str]]) -> OwnCompany:
    """R22: what the partner's profile declares now and every (kind, value) it ever declared."""
    return OwnCompany.of([*declared_now(partner), *(Identifier(kind, value) for kind, value in history)])


async def record_identifiers(session: AsyncSession, partner: Partner, now: datetime, *, new: bool = False) -> None:
    """R22: keep the partner's identifier history in step with its profile: a value it no longer
    declares is withdrawn (and keeps counting), a value it declares anew is added with its date."""
    declared = declared_now(partner)
    held: set[Identifier] = set()
    for row in [] if new else await repo.held_identifiers(session, partner.id):
        identifier = Identifier(row.kind, row.value)
        if identifier in declared and identifier not in held:
            held.add(identifier)
        else:
            row.withdrawn_at = now
    for identifier in sorted(declared - held):
        session.add(
            PartnerIdentifier(partner_id=partner.id, kind=identifier.kind, value=identifier.value, declared_at=now)
        )
