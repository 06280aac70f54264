"""What the applier read up front for a batch of store events, answered from memory.

The applier applies a batch of events in one savepoint (`app.domain.webhooks`). Before it, it reads
in a few set-based statements what each order's rules would otherwise read one round trip at a
time (`app.db.repositories.batch.prefetch`): the order ids' locks, the terms, the customers the
orders name (locked), their relationships (locked) and partners, the identifiers those partners and
the buyers ever declared (R22), those partners' R04 facts, their
balances (locked) and points before each order, the licences and not-for-resale licences the lines
name (locked). The repository functions ask `of(session)` first and go to the database as before
for anything it does not hold.

What the batch itself changes is never answered from here: the code that writes a customer's
identifiers, a relationship or a licence `forget`s them, so the next read goes to the database (the
session flushes first), and points written while the batch runs are added to the sums read up
front (`note_points`). The memo lives only as long as the batch's savepoint: the applier drops it
when the batch ends, whatever happened, so a batch done again one event at a time reads everything
afresh.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_KEY = "batch.memo"


@dataclass
class BatchMemo:
    locked_orders: set[str] = field(default_factory=set)
    """Order ids whose lock (`orders.lock_order_id`) this transaction holds."""
    terms_refs: list[tuple[int, datetime, str]] | None = None
    """(version, effective_from, digest) of every terms version, latest first."""
    nfr_asked: set[str] = field(default_factory=set)
    nfr: dict[str, Any] = field(default_factory=dict)
    """The not-for-resale licences among `nfr_asked`, by licence id."""
    identifiers_asked: set[tuple[str, str]] = field(default_factory=set)
    identifier_owner: dict[tuple[str, str], uuid.UUID] = field(default_factory=dict)
    customers: dict[uuid.UUID, Any] = field(default_factory=dict)
    """The customers `identifier_owner` names, locked."""
    relationships: dict[uuid.UUID, Any] = field(default_factory=dict)
    """By customer id: its relationship (locked), or None; only for customers asked."""
    declared: dict[uuid.UUID, list[tuple[str, str]]] = field(default_factory=dict)
    """R22: every (kind, value) each partner read up front ever declared as its own company's."""
    facts: dict[uuid.UUID, Any] = field(default_factory=dict)
    """`partners.standing_facts` by partner id."""
    balances: dict[uuid.UUID, Any] = field(default_factory=dict)
    """Partner balances, locked."""
    points_before: dict[tuple[uuid.UUID, datetime], int] = field(default_factory=dict)
    """Points effective before a moment, as read up front (before anything of the batch)."""
    points_added: dict[uuid.UUID, list[tuple[datetime, int]]] = field(default_factory=dict)
    """Points entries the batch wrote since, per partner: (effective_at, points)."""
    licences_asked: set[str] = field(default_factory=set)
    licences: dict[str, Any] = field(default_factory=dict)
    """The licences among `licences_asked` that exist, locked."""
    accrued: dict[tuple[uuid.UUID, str, str], int] = field(default_factory=dict)
    """Commission the batch's events accrued, by (partner, quarter, currency), and
    `money`: what they moved, by (partner, currency); neither written yet. Written once, when the
    batch ends (`batch.write_pending`), every key an event touched, even one whose total came to 0 (one
    event at a time, its row would exist)."""
    money: dict[tuple[uuid.UUID, str], int] = field(default_factory=dict)
    points_rows: list[dict[str, Any]] = field(default_factory=list)
    money_rows: list[dict[str, Any]] = field(default_factory=list)
    """Ledger entries the batch made, not yet written: `ledgers.write_pending_entries` writes them,
    in the order they were made, before any read of the ledgers and when the batch ends."""


def of(session: AsyncSession) -> BatchMemo | None:
    memo: BatchMemo | None = session.info.get(_KEY)
    return memo


def install(session: AsyncSession, memo: BatchMemo) -> None:
    session.info[_KEY] = memo


def drop(session: AsyncSession) -> None:
    session.info.pop(_KEY, None)


def forget_identifiers(session: AsyncSession, pairs: list[tuple[str, str]]) -> None:
    """Identifiers the batch is adding to a customer: read from the database from now on."""
    memo = of(session)
    if memo is not None:
        memo.identifiers_asked.difference_update(pairs)


def forget_relationship(session: AsyncSession, customer_id: uuid.UUID) -> None:
    memo = of(session)
    if memo is not None:
        memo.relationships.pop(customer_id, None)


def forget_licence(session: AsyncSession, licence_id: str) -> None:
    memo = of(session)
    if memo is not None:
        memo.licences_asked.discard(licence_id)
        memo.licences.pop(licence_id, None)


def note_points(session: AsyncSession, partner_id: uuid.UUID, effective_at: datetime, points: int) -> None:
    """A points entry written while the batch runs: the sums read up front take it into account."""
    memo = of(session)
    if memo is not None:
        memo.points_added.setdefault(partner_id, []).append((effective_at, points))


def points_before(memo: BatchMemo, partner_id: uuid.UUID, at: datetime) -> int | None:
    """The partner's points effective before `at`, when read up front; None otherwise."""
    read = memo.points_before.get((partner_id, at))
    if read is None:
        return None
    return read + sum(points for effective_at, points in memo.points_added.get(partner_id, ()) if effective_at < at)
