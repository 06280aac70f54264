"""SQL for the points and money ledgers, their summaries and level history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Select,
    bindparam,
    case,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col

from app.db.repositories import dialect
from app.db.repositories.dialect import table_of
from app.db.tables import LevelChange, MoneyEntry, Partner, PartnerBalance, PartnerMoneyBalance, PointsEntry


def _upsert_balance(dialect_module: Any) -> Any:
    # One statement: the upsert creates a missing row and, on conflict, locks the existing one (a
    # no-op update) and returns it.
    stmt = dialect_module.insert(PartnerBalance).values(
        partner_id=bindparam("partner_id"), points=0, level="affiliate", updated_at=bindparam("now")
    )
    return stmt.on_conflict_do_update(
        index_elements=[col(PartnerBalance.partner_id)], set_={"partner_id": col(PartnerBalance.partner_id)}
    )


def _lock_balance_stmt(dialect_module: Any) -> Any:
    return _upsert_balance(dialect_module).returning(PartnerBalance)


def _add_money_stmt(dialect_module: Any) -> Any:
    stmt = dialect_module.insert(table_of(PartnerMoneyBalance))
    return stmt.on_conflict_do_update(
        index_elements=[col(PartnerMoneyBalance.partner_id), col(PartnerMoneyBalance.currency)],
        set_={"amount": col(PartnerMoneyBalance.amount) + stmt.excluded.amount},
    )


def _lock_balance_with_points_before_stmt(dialect_module: Any) -> Any:
    # The same, and in the same round trip the sum `points_before` reads (R03a); SQLite only (see
    # lock_balance_with_points_before).
    points_before = (
        select(func.coalesce(func.sum(PointsEntry.points), 0))
        .where(col(PointsEntry.partner_id) == bindparam("partner_id"), col(PointsEntry.effective_at) < bindparam("at"))
        .scalar_subquery()
    )
    return _upsert_balance(dialect_module).returning(PartnerBalance, points_before)


# Built once: the crediting path runs them for every event, and a statement built per call costs
# more to build and to find in the compiled cache than to run.
_LOCK_BALANCE = dialect.per_dialect(_lock_balance_stmt)
_LOCK_BALANCE_WITH_POINTS = _lock_balance_with_points_before_stmt(sqlite)  # SQLite only
_ADD_MONEY = dialect.per_dialect(_add_money_stmt)
_POINTS_BEFORE = select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
    col(PointsEntry.partner_id) == bindparam("partner_id"), col(PointsEntry.effective_at) < bindparam("at")
)


async def lock_balance(session: AsyncSession, partner_id: uuid.UUID, now: datetime) -> PartnerBalance:
    """The partner's balance row, created if missing, locked until the transaction ends.

    Every write to a partner's ledgers goes through this lock, so concurrent orders for one
    partner apply one after the other.
    """
    # A batch asks for each balance once (`app.domain.batch.Facts.balance`) and keeps it.
    # populate_existing: a balance object this session loaded earlier takes the locked row's values.
    balance: PartnerBalance = (
        await session.scalars(
            dialect.pick(session, _LOCK_BALANCE),
            {"partner_id": partner_id, "now": now},
            execution_options={"populate_existing": True},
        )
    ).one()
    return balance


async def money_balances(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[PartnerMoneyBalance]:
    stmt = (
        select(PartnerMoneyBalance)
        .where(col(PartnerMoneyBalance.partner_id) == partner_id)
        .order_by(col(PartnerMoneyBalance.currency))
    )
    return (await session.execute(stmt)).scalars().all()


async def lock_balance_with_points_before(
    session: AsyncSession, partner_id: uuid.UUID, now: datetime, at: datetime
) -> tuple[PartnerBalance, int]:
    """`lock_balance`, and `points_before(at)`.

    On SQLite, in the same statement (its transactions run one at a time). Not on Postgres: a
    statement reads the snapshot taken when it started, so when the upsert waits for the lock of a
    transaction that is adding this partner's points, its RETURNING would not see those points; the
    sum is read after the lock, by a statement of its own."""
    if session.get_bind().dialect.name == "postgresql":
        balance = await lock_balance(session, partner_id, now)
        return balance, await points_before(session, partner_id, at)
    row = (
        await session.execute(
            _LOCK_BALANCE_WITH_POINTS,
            {"partner_id": partner_id, "now": now, "at": at},
            execution_options={"populate_existing": True},
        )
    ).one()
    return row[0], int(row[1])


async def add_money_to_balance(session: AsyncSession, partner_id: uuid.UUID, currency: str, amount: int) -> None:
    await session.execute(
        dialect.pick(session, _ADD_MONEY), {"partner_id": partner_id, "currency": currency, "amount": amount}
    )


async def add_money_to_balances(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """`add_money_to_balance` for several (partner, currency): one statement, run for each row."""
    await session.execute(dialect.pick(session, _ADD_MONEY), list(rows))


async def insert_entries(
    session: AsyncSession,
    points: Sequence[dict[str, Any]],
    money: Sequence[dict[str, Any]],
    *,
    points_ids: bool = False,
) -> list[int]:
    """Ledger entries as rows, in the order given: one statement per ledger. With `points_ids`, the
    ids the points entries were given, in the same order (else [])."""
    ids: list[int] = []
    if points and points_ids:
        ids = list((await session.scalars(_INSERT_POINTS_RETURNING, list(points))).all())
    elif points:
        await session.execute(_INSERT_POINTS, list(points))
    if money:
        await session.execute(_INSERT_MONEY, list(money))
    return ids


_INSERT_POINTS = table_of(PointsEntry).insert()
_INSERT_POINTS_RETURNING = (
    table_of(PointsEntry).insert().returning(table_of(PointsEntry).c.id, sort_by_parameter_order=True)
)
_INSERT_MONEY = table_of(MoneyEntry).insert()


async def points_before(session: AsyncSession, partner_id: uuid.UUID, at: datetime) -> int:
    """Sum of the partner's points entries effective strictly before `at` (R03a)."""
    return int((await session.execute(_POINTS_BEFORE, {"partner_id": partner_id, "at": at})).scalar_one())


async def points_for_licence(session: AsyncSession, licence_id: str) -> int:
    stmt = select(func.coalesce(func.sum(PointsEntry.points), 0)).where(col(PointsEntry.licence_id) == licence_id)
    return int((await session.execute(stmt)).scalar_one())


async def standing_and_entries(
    session: AsyncSession, licence_ids: Sequence[str], entry_ids: Sequence[int]
) -> tuple[dict[str, int], dict[int, int]]:
    """The points standing for each licence (the sum of its entries, 0 for none), and the points of
    each entry among `entry_ids`: one statement for both."""
    if not licence_ids and not entry_ids:
        return {}, {}
    parts: list[Any] = []
    if licence_ids:
        parts.append(
            select(
                literal_column("'licence'"),
                col(PointsEntry.licence_id),
                literal_column("0"),
                func.sum(PointsEntry.points),
            )
            .where(col(PointsEntry.licence_id).in_(sorted(set(licence_ids))))
            .group_by(col(PointsEntry.licence_id))
        )
    if entry_ids:
        parts.append(
            select(literal_column("'entry'"), null(), col(PointsEntry.id), col(PointsEntry.points)).where(
                col(PointsEntry.id).in_(sorted(set(entry_ids)))
            )
        )
    stmt: Any = union_all(*parts) if len(parts) > 1 else parts[0]
    standing = dict.fromkeys(licence_ids, 0)
    entries: dict[int, int] = {}
    for kind, licence_id, entry_id, points in (await session.execute(stmt)).all():
        if kind == "licence":
            standing[licence_id] = int(points or 0)
        else:
            entries[int(entry_id)] = int(points)
    return standing, entries


@dataclass(frozen=True)
class LineEarnings:
    """What a line's ledger entries hold, for a refund of it (R14)."""

    money_partner: tuple[uuid.UUID, str] | None = None
    """The partner and currency of its commission, if it earned any."""
    money_earned: int = 0
    """Its commission credits of the refundable rules."""
    money_reversed: int = 0
    """Its reversal entries (negative)."""
    points_partner: uuid.UUID | None = None
    points_credited: int = 0
    points_reversed: int = 0


async def line_earnings(
    session: AsyncSession,
    line_ids: Sequence[int],
    *,
    money_rules: Sequence[str],
    points_rules: Sequence[str],
    reversal: str,
) -> dict[int, LineEarnings]:
    """`LineEarnings` of each line, in one statement: credits of `money_rules` and `points_rules`
    (those that add), and entries of `reversal`, per line."""
    found: dict[int, LineEarnings] = {i: LineEarnings() for i in line_ids}
    if not line_ids:
        return found

    def per_line(entry: Any, amount: Any, rules: Sequence[str], currency: Any) -> Select[Any]:
        return (
            select(
                literal_column("'money'" if entry is MoneyEntry else "'points'"),
                col(entry.order_line_id),
                col(entry.partner_id),
                currency,
                func.coalesce(func.sum(case((col(entry.rule).in_(rules) & (amount > 0), amount), else_=0)), 0),
                func.coalesce(func.sum(case((col(entry.rule) == reversal, amount), else_=0)), 0),
            )
            .where(col(entry.order_line_id).in_(sorted(set(line_ids))))
            .group_by(col(entry.order_line_id), col(entry.partner_id), *([currency] if entry is MoneyEntry else []))
        )

    stmt = union_all(
        per_line(MoneyEntry, col(MoneyEntry.amount), money_rules, col(MoneyEntry.currency)),
        per_line(PointsEntry, col(PointsEntry.points), points_rules, null()),
    )
    for kind, line_id, partner_id, currency, credited, reversed_ in (await session.execute(stmt)).all():
        held = found[line_id]
        if kind == "money" and held.money_partner is None:
            found[line_id] = replace(
                held, money_partner=(partner_id, currency), money_earned=int(credited), money_reversed=int(reversed_)
            )
        elif kind == "points" and held.points_partner is None:
            found[line_id] = replace(
                held, points_partner=partner_id, points_credited=int(credited), points_reversed=int(reversed_)
            )
    return found


async def get_points_entry(session: AsyncSession, entry_id: int) -> PointsEntry | None:
    return await session.get(PointsEntry, entry_id)


async def points_entries(
    session: AsyncSession, partner_id: uuid.UUID, *, before_id: int | None, limit: int
) -> Sequence[PointsEntry]:
    stmt = select(PointsEntry).where(col(PointsEntry.partner_id) == partner_id)
    if before_id is not None:
        stmt = stmt.where(col(PointsEntry.id) < before_id)
    stmt = stmt.order_by(col(PointsEntry.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def money_entries(
    session: AsyncSession, partner_id: uuid.UUID, *, before_id: int | None, limit: int
) -> Sequence[MoneyEntry]:
    stmt = select(MoneyEntry).where(col(MoneyEntry.partner_id) == partner_id)
    if before_id is not None:
        stmt = stmt.where(col(MoneyEntry.id) < before_id)
    stmt = stmt.order_by(col(MoneyEntry.id).desc()).limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def level_history(session: AsyncSession, partner_id: uuid.UUID) -> Sequence[LevelChange]:
    stmt = select(LevelChange).where(col(LevelChange.partner_id) == partner_id).order_by(col(LevelChange.id))
    return (await session.execute(stmt)).scalars().all()


async def money_before(session: AsyncSession, partner_id: uuid.UUID, at: datetime) -> dict[str, int]:
    """Sum of the partner's money entries effective strictly before `at`, per currency."""
    stmt = (
        select(col(MoneyEntry.currency), func.sum(MoneyEntry.amount))
        .where(col(MoneyEntry.partner_id) == partner_id, col(MoneyEntry.effective_at) < at)
        .group_by(col(MoneyEntry.currency))
    )
    return {r[0]: int(r[1] or 0) for r in (await session.execute(stmt)).all()}


def _at_risk_query(partner: Any, start: Any, end: Any) -> Select[Any]:
    """The standing points of the partner's active licences whose term ends in [start, end), those
    above zero: read from each licence's `standing_points` (kept by the database's triggers as entries
    are written) over the (partner_id, status, term_end) index, never summed over ledger entries."""
    from app.db.tables import Licence

    return select(func.coalesce(func.sum(col(Licence.standing_points)), 0)).where(
        col(Licence.partner_id) == partner,
        col(Licence.status) == "active",
        col(Licence.term_end) >= start,
        col(Licence.term_end) < end,
        col(Licence.standing_points) > 0,
    )


@dataclass(frozen=True)
class Standing:
    points: int
    money: dict[str, int]
    points_at_risk: int


def _standing_query() -> CompoundSelect[Any]:
    partner: BindParameter[Any] = bindparam("partner")
    start: BindParameter[Any] = bindparam("start")
    end: BindParameter[Any] = bindparam("end")
    at_risk = _at_risk_query(partner, start, end).scalar_subquery()
    return union_all(
        select(literal_column("'partner'"), null(), literal_column("0")).where(col(Partner.id) == partner),
        select(literal_column("'points'"), null(), col(PartnerBalance.points)).where(
            col(PartnerBalance.partner_id) == partner
        ),
        select(literal_column("'money'"), col(PartnerMoneyBalance.currency), col(PartnerMoneyBalance.amount)).where(
            col(PartnerMoneyBalance.partner_id) == partner
        ),
        select(literal_column("'risk'"), null(), at_risk),
    )


# Built once: the status read is the most frequent request, and building a statement costs more
# Python than running it.
_STANDING = _standing_query()


async def standing(
    session: AsyncSession | AsyncConnection, partner_id: uuid.UUID, start: datetime, end: datetime
) -> Standing | None:
    """A partner's points, money balances and points at risk (licences ending in [start, end)), in
    one round trip, through a session or a Core connection; None when there is no such partner."""
    result = await session.execute(_STANDING, {"partner": partner_id, "start": start, "end": end})
    rows: list[tuple[str, str | None, int | None]] = [(r[0], r[1], r[2]) for r in result]
    if not any(kind == "partner" for kind, _, _ in rows):
        return None
    points = next((int(v or 0) for kind, _, v in rows if kind == "points"), 0)
    money = {str(currency): int(v or 0) for kind, currency, v in rows if kind == "money"}
    at_risk = next((int(v or 0) for kind, _, v in rows if kind == "risk"), 0)
    return Standing(points=points, money=dict(sorted(money.items())), points_at_risk=at_risk)


async def points_at_risk(session: AsyncSession, partner_id: uuid.UUID, start: datetime, end: datetime) -> int:
    """Standing points of the partner's active licences whose term ends in [start, end), in one query."""
    return int((await session.execute(_at_risk_query(partner_id, start, end))).scalar_one())
