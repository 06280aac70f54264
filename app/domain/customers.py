"""Customers: identified by normalised identifiers (R05), known as existing (R06), flagged."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import customers as repo
from app.db.tables import Customer, CustomerIdentifier
from app.domain import audit
from app.domain.context import Context
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.rules.identifiers import Identifier, strong_identifiers, vat_problem


class AmbiguousCustomer(Conflict):
    code = "identifiers_match_several_customers"


def is_existing(customer: Customer) -> bool:
    """R06: the customer already bought from the vendor, through anyone."""
    return customer.first_purchase_at is not None or customer.imported_at is not None


async def resolve(
    session: AsyncSession,
    *,
    company: str,
    country: str,
    identifiers: Sequence[Identifier],
    now: datetime,
    lock: bool = True,
) -> Customer:
    """The customer these identifiers name, created when none does; locked for the transaction.

    Two transactions creating the same new customer at once: the second's insert meets the
    first's identifiers, waits for it, and then takes the customer the first created.
    """
    customer, _created = await _resolve(
        session, company=company, country=country, identifiers=identifiers, now=now, lock=lock
    )
    return customer


async def _resolve(
    session: AsyncSession,
    *,
    company: str,
    country: str,
    identifiers: Sequence[Identifier],
    now: datetime,
    lock: bool = True,
) -> tuple[Customer, bool]:
    """`resolve`, and whether it created the customer."""
    for _ in range(3):
        matches, found = await repo.matching(session, identifiers, lock=lock)
        customer = one_match(found)
        if customer is not None:
            if await add_missing(session, customer, matches, identifiers) is None:
                continue  # an identifier was taken meanwhile: look again
            return customer, False
        created = await create(session, company=company, country=country, identifiers=identifiers, now=now)
        if created is None:
            continue  # created concurrently by another transaction, now committed: look again
        return created, True
    raise busy()


def busy() -> Conflict:
    return Conflict("The customer changed while this request ran; try again.", code="customer_busy")


def one_match(found: dict[uuid.UUID, Customer]) -> Customer | None:
    """The one customer the identifiers matched, None for none; raises AmbiguousCustomer for several."""
    if len(found) > 1:
        raise AmbiguousCustomer(
            "These identifiers belong to several customers the vendor knows apart; an admin must "
            "decide which one is meant.",
        )
    return next(iter(found.values()), None)


async def add_missing(
    session: AsyncSession,
    customer: Customer,
    matches: Sequence[tuple[uuid.UUID, str, str]],
    identifiers: Sequence[Identifier],
) -> list[Identifier] | None:
    """Give the matched customer the identifiers that matched nobody; the ones added, or None when
    one was taken meanwhile (nothing added then)."""
    known = {(kind, value) for _, kind, value in matches}
    missing = [i for i in identifiers if (i.kind, i.value) not in known]
    if missing:
        try:
            async with session.begin_nested():
                for ident in missing:
                    session.add(CustomerIdentifier(customer_id=customer.id, kind=ident.kind, value=ident.value))
        except IntegrityError:
            return None
    return missing


async def create(
    session: AsyncSession, *, company: str, country: str, identifiers: Sequence[Identifier], now: datetime
) -> Customer | None:
    """A new customer with these identifiers; None when one of them was taken meanwhile."""
    customer = Customer(company=company, country=country, created_at=now)
    try:
        async with session.begin_nested():
            session.add(customer)
            await session.flush()
            for ident in identifiers:
                session.add(CustomerIdentifier(customer_id=customer.id, kind=ident.kind, value=ident.value))
    except IntegrityError:
        return None
    return customer


@dataclass(frozen=True)
class ImportRow:
    company: str
    country: str
    vat_id: str | None = None
    domain: str | None = None
    store_customer_id: str | None = None


@dataclass(frozen=True)
class ImportResult:
    created: int
    marked_existing: int
    unchanged: int
    errors: list[dict[str, object]]


async def import_existing(session: AsyncSession, ctx: Context, rows: Sequence[ImportRow]) -> ImportResult:
    """Record the vendor's existing customers (R06). Idempotent: importing twice changes nothing."""
    created = marked = unchanged = 0
    errors: list[dict[str, object]] = []
    checks = [
        strong_identifiers(
            country=row.country,
            vat_id=row.vat_id,
            email=None,
            domain=row.domain,
            store_customer_id=row.store_customer_id,
        )
        for row in rows
    ]
    # Rows are taken in the file's order; the locks they need are taken first, in one order.
    await repo.lock_for_import(session, (i for check in checks for i in check.identifiers))
    for index, (row, check) in enumerate(zip(rows, checks, strict=True)):
        if not check.identifiers:
            errors.append(
                {"row": index, "detail": "no strong identifier (vat_id, business domain or store_customer_id)"}
            )
            continue
        if row.vat_id and (problem := vat_problem(row.vat_id, row.country)):
            errors.append({"row": index, "detail": f"vat_id {row.vat_id} {problem}"})
            continue
        try:
            customer, new = await _resolve(
                session, company=row.company, country=row.country, identifiers=check.identifiers, now=ctx.now
            )
        except AmbiguousCustomer as exc:
            errors.append({"row": index, "detail": exc.detail})
            continue
        if customer.imported_at is not None:
            unchanged += 1
            continue
        customer.imported_at = ctx.now
        if new:
            created += 1
        else:
            marked += 1
    await session.flush()
    audit.record(
        session,
        ctx,
        action="customers.imported",
        object_type="customers",
        object_id="import",
        after={
            "rows": len(rows),
            "created": created,
            "marked_existing": marked,
            "unchanged": unchanged,
            "errors": len(errors),
        },
    )
    return ImportResult(created, marked, unchanged, errors)


async def get(session: AsyncSession, customer_id: uuid.UUID, *, for_update: bool = False) -> Customer:
    customer = await repo.get(session, customer_id, for_update=for_update)
    if customer is None:
        raise NotFound(f"No customer {customer_id}.", code="customer_not_found")
    return customer


async def identifiers(session: AsyncSession, customer_id: uuid.UUID) -> list[Identifier]:
    return sorted(Identifier(i.kind, i.value) for i in await repo.identifiers_of(session, customer_id))


async def identifiers_of(session: AsyncSession, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Identifier]]:
    """`identifiers` of each of several customers (a page of them), in one read."""
    held = await repo.identifiers_of_many(session, customer_ids)
    return {c: sorted(Identifier(i.kind, i.value) for i in rows) for c, rows in held.items()}


async def flag_sales_process(
    session: AsyncSession, ctx: Context, customer_id: uuid.UUID, *, until: datetime, reason: str
) -> Customer:
    """R06: the vendor is in an active sales process with this customer until `until`."""
    if until <= ctx.now:
        raise Invalid("`until` must lie in the future.", code="until_in_past", field="until")
    customer = await get(session, customer_id, for_update=True)
    before = audit.snapshot(customer, ("sales_process_until", "sales_process_reason"))
    customer.sales_process_until = until
    customer.sales_process_reason = reason
    await session.flush()
    audit.record(
        session,
        ctx,
        action="customer.sales_process_flagged",
        object_type="customer",
        object_id=customer.id,
        before=before,
        after=audit.snapshot(customer, ("sales_process_until", "sales_process_reason")),
    )
    return customer


async def unflag_sales_process(session: AsyncSession, ctx: Context, customer_id: uuid.UUID) -> Customer:
    customer = await get(session, customer_id, for_update=True)
    if customer.sales_process_until is not None:
        before = audit.snapshot(customer, ("sales_process_until", "sales_process_reason"))
        customer.sales_process_until = None
        customer.sales_process_reason = None
        await session.flush()
        audit.record(
            session,
            ctx,
            action="customer.sales_process_unflagged",
            object_type="customer",
            object_id=customer.id,
            before=before,
            after={"sales_process_until": None},
        )
    return customer


async def search(
    session: AsyncSession, *, q: str | None, identifier: Identifier | None, limit: int, after: uuid.UUID | None
) -> Sequence[Customer]:
    return await repo.search(session, q=q, identifier=identifier, limit=limit, after=after)
