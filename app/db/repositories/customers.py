"""SQL for customers, their identifiers, registrations, refusals and relationships."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.db.repositories import partners as partners_repo
from app.db.repositories.dialect import table_of
from app.db.tables import Customer, CustomerIdentifier, Partner, Registration, RegistrationRefusal, Relationship
from app.domain.rules.identifiers import Identifier

OPEN_STATES = ("live", "offered")


async def customer_ids_for(session: AsyncSession, identifiers: Sequence[Identifier]) -> list[uuid.UUID]:
    """The customers these identifiers name, in id order."""
    return sorted({customer_id for customer_id, _, _ in await identifier_matches(session, identifiers)})


async def identifier_matches(
    session: AsyncSession, identifiers: Sequence[Identifier]
) -> list[tuple[uuid.UUID, str, str]]:
    """(customer_id, kind, value) of the stored identifiers among these."""
    if not identifiers:
        return []
    clauses = [
        (col(CustomerIdentifier.kind) == i.kind) & (col(CustomerIdentifier.value) == i.value) for i in identifiers
    ]
    stmt = select(
        col(CustomerIdentifier.customer_id), col(CustomerIdentifier.kind), col(CustomerIdentifier.value)
    ).where(or_(*clauses))
    return [(r[0], r[1], r[2]) for r in (await session.execute(stmt)).all()]


_LOCK_IDENTIFIERS = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM unnest(CAST(:keys AS text[])) AS k"
).bindparams(bindparam("keys", type_=postgresql.ARRAY(String())))
"""Each identifier's lock, in the order given (sorted by the caller)."""

_LOCK_CUSTOMERS_NAMED = text(
    "SELECT c.id FROM customers AS c WHERE c.id IN ("
    " SELECT i.customer_id FROM customer_identifiers AS i"
    " JOIN unnest(CAST(:kinds AS text[]), CAST(:vals AS text[])) AS u(kind, value)"
    " ON i.kind = u.kind AND i.value = u.value"
    ") ORDER BY c.id FOR UPDATE OF c"
).bindparams(bindparam("kinds", type_=postgresql.ARRAY(String())), bindparam("vals", type_=postgresql.ARRAY(String())))


async def lock_for_import(session: AsyncSession, identifiers: Iterable[Identifier]) -> None:
    """Take, up front and in one order, every lock an import of customers with these identifiers
    would otherwise take row by row in its file's order: each identifier's (the identifiers a new
    customer is inserted with), sorted, then the customers they name, in id order. Two imports
    sharing customers in other orders then wait for each other instead of deadlocking. SQLite
    transactions are serial already."""
    if session.get_bind().dialect.name != "postgresql":
        return
    unique = sorted({(i.kind, i.value) for i in identifiers})
    if not unique:
        return
    await session.execute(_LOCK_IDENTIFIERS, {"keys": [f"identifier:{kind}:{value}" for kind, value in unique]})
    kinds, values = [kind for kind, _ in unique], [value for _, value in unique]
    await session.execute(_LOCK_CUSTOMERS_NAMED, {"kinds": kinds, "vals": values})


@functools.cache
def _matching_stmt(count: int, lock: bool) -> Any:
    """Built once per number of identifiers (one to four) and locking: every order runs it."""
    clauses = [
        (col(CustomerIdentifier.kind) == bindparam(f"kind{n}"))
        & (col(CustomerIdentifier.value) == bindparam(f"value{n}"))
        for n in range(count)
    ]
    stmt = (
        select(
            col(CustomerIdentifier.customer_id), col(CustomerIdentifier.kind), col(CustomerIdentifier.value), Customer
        )
        .join(Customer, col(Customer.id) == col(CustomerIdentifier.customer_id))
        .where(or_(*clauses))
        .order_by(col(Customer.id))  # several customers (then ambiguous) are locked in one order
    )
    if lock:
        stmt = stmt.with_for_update(of=Customer).execution_options(populate_existing=True)
    return stmt


async def matching(
    session: AsyncSession, identifiers: Sequence[Identifier], *, lock: bool
) -> tuple[list[tuple[uuid.UUID, str, str]], dict[uuid.UUID, Customer]]:
    """`identifier_matches` and the customers they name, in one round trip; `lock`: those customers
    locked until the transaction ends."""
    if not identifiers:
        return [], {}
    params: dict[str, str] = {}
    for n, ident in enumerate(identifiers):
        params[f"kind{n}"], params[f"value{n}"] = ident.kind, ident.value
    rows = (await session.execute(_matching_stmt(len(identifiers), lock), params)).all()
    return [(r[0], r[1], r[2]) for r in rows], {r[3].id: r[3] for r in rows}


async def insert_customers(
    session: AsyncSession, customers: Sequence[dict[str, Any]], identifiers: Sequence[dict[str, Any]]
) -> None:
    """Record customers and identifiers (Core: no unit of work): one INSERT for each table. An
    identifier held already raises IntegrityError (callers looked it up first, under its lock)."""
    with session.no_autoflush:
        if customers:
            await session.execute(_INSERT_CUSTOMERS, list(customers))
        if identifiers:
            await session.execute(_INSERT_IDENTIFIERS, list(identifiers))


_INSERT_CUSTOMERS = insert(table_of(Customer))  # built once
_INSERT_IDENTIFIERS = insert(table_of(CustomerIdentifier))


async def get(session: AsyncSession, customer_id: uuid.UUID, *, for_update: bool = False) -> Customer | None:
    stmt = select(Customer).where(col(Customer.id) == customer_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def identifiers_of(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[CustomerIdentifier]:
    stmt = select(CustomerIdentifier).where(col(CustomerIdentifier.customer_id) == customer_id)
    return (await session.execute(stmt)).scalars().all()


async def identifiers_of_many(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[CustomerIdentifier]]:
    """The identifiers of each customer among `customer_ids` (none: an empty list), in one statement."""
    found: dict[uuid.UUID, list[CustomerIdentifier]] = {i: [] for i in customer_ids}
    if not found:
        return found
    stmt = select(CustomerIdentifier).where(col(CustomerIdentifier.customer_id).in_(sorted(found)))
    for row in (await session.execute(stmt)).scalars():
        found[row.customer_id].append(row)
    return found


async def search(
    session: AsyncSession, *, q: str | None, identifier: Identifier | None, limit: int, after: uuid.UUID | None
) -> Sequence[Customer]:
    stmt = select(Customer)
    if identifier is not None:
        stmt = stmt.where(
            col(Customer.id).in_(
                select(col(CustomerIdentifier.customer_id)).where(
                    col(CustomerIdentifier.kind) == identifier.kind, col(CustomerIdentifier.value) == identifier.value
                )
            )
        )
    if q:
        stmt = stmt.where(col(Customer.company).ilike(f"%{q}%"))
    if after is not None:
        stmt = stmt.where(col(Customer.id) > after)
    stmt = stmt.order_by(col(Customer.id)).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def open_registrations(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[Registration]:
    stmt = select(Registration).where(
        col(Registration.customer_id) == customer_id, col(Registration.state).in_(OPEN_STATES)
    )
    return (await session.execute(stmt)).scalars().all()


async def due_to_expire(
    session: AsyncSession, now: datetime, *, customer_id: uuid.UUID | None = None, limit: int | None = None
) -> Sequence[Registration]:
    """Live registrations whose window has ended, locked (skipping those another worker holds)."""
    stmt = select(Registration).where(col(Registration.state) == "live", col(Registration.expires_at) <= now)
    if customer_id is not None:
        stmt = stmt.where(col(Registration.customer_id) == customer_id)
    stmt = stmt.order_by(col(Registration.expires_at))
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.execute(stmt.with_for_update(skip_locked=True))).scalars().all()


async def expiring(session: AsyncSession, now: datetime, notice: timedelta) -> Sequence[Registration]:
    """Live registrations whose window ends within `notice` from now."""
    stmt = (
        select(Registration)
        .where(
            col(Registration.state) == "live",
            col(Registration.expires_at) > now,
            col(Registration.expires_at) <= now + notice,
        )
        .order_by(col(Registration.expires_at))
    )
    return (await session.execute(stmt)).scalars().all()


async def last_expired(session: AsyncSession, partner_id: uuid.UUID, customer_id: uuid.UUID) -> Registration | None:
    stmt = (
        select(Registration)
        .where(
            col(Registration.partner_id) == partner_id,
            col(Registration.customer_id) == customer_id,
            col(Registration.state) == "expired",
        )
        .order_by(col(Registration.expires_at).desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def registration(
    session: AsyncSession, registration_id: uuid.UUID, *, for_update: bool = False
) -> Registration | None:
    stmt = select(Registration).where(col(Registration.id) == registration_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def partner_registrations(
    session: AsyncSession, partner_id: uuid.UUID, *, states: Sequence[str] | None
) -> Sequence[Registration]:
    stmt = select(Registration).where(col(Registration.partner_id) == partner_id)
    if states:
        stmt = stmt.where(col(Registration.state).in_(states))
    stmt = stmt.order_by(col(Registration.registered_at).desc(), col(Registration.id))
    return (await session.execute(stmt)).scalars().all()


async def registrations_covering(
    session: AsyncSession, customer_id: uuid.UUID, at: datetime, *, states: Sequence[str] = ("live", "expired")
) -> Sequence[Registration]:
    """Registrations (live or since expired, by default) whose window contains `at`:
    registered_at < at < expires_at."""
    stmt = select(Registration).where(
        col(Registration.customer_id) == customer_id,
        col(Registration.state).in_(states),
        col(Registration.registered_at) < at,
        col(Registration.expires_at) > at,
    )
    return (await session.execute(stmt)).scalars().all()


async def registrations_of(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID], *, states: Sequence[str]
) -> dict[uuid.UUID, list[Registration]]:
    """Every registration in these states of each of these customers (an empty list for none), in one
    statement."""
    found: dict[uuid.UUID, list[Registration]] = {c: [] for c in customer_ids}
    if customer_ids:
        stmt = select(Registration).where(
            col(Registration.customer_id).in_(sorted(set(customer_ids))), col(Registration.state).in_(states)
        )
        for row in (await session.execute(stmt)).scalars():
            found[row.customer_id].append(row)
    return found


def add_refusal(session: AsyncSession, refusal: RegistrationRefusal) -> None:
    session.add(refusal)


_RELATIONSHIP_FOR = (  # built once: every order runs it
    select(Relationship, Partner)
    .join(Partner, col(Partner.id) == col(Relationship.partner_id))
    .where(col(Relationship.customer_id) == bindparam("customer_id"))
    .with_for_update(of=Relationship)
)


async def relationship_for(session: AsyncSession, customer_id: uuid.UUID) -> Relationship | None:
    """The customer's relationship, locked; its partner is read with it and kept in the session
    (`partners.known` finds it without another round trip)."""
    row = (await session.execute(_RELATIONSHIP_FOR, {"customer_id": customer_id})).first()
    if row is None:
        return None
    partners_repo.keep(session, row[1])
    return row[0]


async def partner_relationships(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[Relationship]:
    stmt = (
        select(Relationship)
        .where(col(Relationship.partner_id) == partner_id)
        .order_by(col(Relationship.first_order_at).desc())
    )
    return (await session.execute(stmt)).scalars().all()


async def end_relationships(session: AsyncSession, partner_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        update(Relationship)
        .where(col(Relationship.partner_id) == partner_id, col(Relationship.ended_at).is_(None))
        .values(ended_at=at)
    )


async def companies(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    stmt = select(col(Customer.id), col(Customer.company)).where(col(Customer.id).in_(ids))
    return {r[0]: r[1] for r in (await session.execute(stmt)).all()}


async def refusals(
    session: AsyncSession, *, partner_id: uuid.UUID | None, code: str | None, before_id: int | None, limit: int
) -> Sequence[RegistrationRefusal]:
    stmt = select(RegistrationRefusal)
    if partner_id is not None:
        stmt = stmt.where(col(RegistrationRefusal.partner_id) == partner_id)
    if code is not None:
        stmt = stmt.where(col(RegistrationRefusal.code) == code)
    if before_id is not None:
        stmt = stmt.where(col(RegistrationRefusal.id) < before_id)
    stmt = stmt.order_by(col(RegistrationRefusal.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()
