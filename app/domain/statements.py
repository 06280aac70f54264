"""Quarterly commission statements and payouts (R16), and manual adjustments."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import partners as partners_repo
from app.db.repositories import statements as repo
from app.db.tables import MoneyEntry, QuarterClose, Statement, StatementLine
from app.domain import audit, events, partners, terms
from app.domain.batch import Facts
from app.domain.context import Context
from app.domain.errors import Conflict, Invalid, InvalidTransition, NotFound
from app.domain.ledger import Ledger, Posting
from app.domain.rules.names import Rule
from app.domain.rules.order_decision import level_move
from app.domain.rules.quarters import Quarter


@dataclass(frozen=True)
class CloseResult:
    quarter: Quarter
    closed_now: bool
    statements: list[Statement]


def payout_moment(quarter: Quarter) -> datetime:
    day = quarter.payout_date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def close_quarter(
    session: AsyncSession, ctx: Context, quarter: Quarter, *, progress: object = None
) -> CloseResult:
    """Produce every statement of the quarter. Idempotent, and safe when run twice at once:
    the second waits for the first and then returns its statements."""
    in_force = await terms.in_force(session, ctx.now)
    zone = in_force.terms.zone
    existing = await repo.get_close(session, str(quarter))
    if existing is None:
        cutoff = quarter.end(zone)
        if ctx.now < cutoff:
            raise InvalidTransition(
                f"{quarter} is not over yet; it ends at {cutoff.isoformat()}.", code="quarter_not_over"
            )
        closes = await repo.closes(session)
        previous = str(quarter.previous())
        if closes and previous not in {c.quarter for c in closes} and previous > min(c.quarter for c in closes):
            raise InvalidTransition(
                f"Close {previous} first: quarters close in order.", code="previous_quarter_open", quarter=previous
            )
        earlier = await _earlier_open_quarter(session, quarter, {c.quarter for c in closes}, zone)
        if earlier is not None:
            raise InvalidTransition(
                f"Close {earlier} first: it holds commission entries and is still open (quarters close in order).",
                code="previous_quarter_open",
                quarter=str(earlier),
            )
        close = QuarterClose(
            quarter=str(quarter),
            time_zone=in_force.terms.time_zone,
            cutoff=cutoff,
            closed_at=ctx.now,
            closed_by=ctx.actor,
        )
        if await repo.claim_close(session, close):
            made = await _make_statements(session, ctx, quarter, cutoff, progress)
            row = await repo.get_close(session, str(quarter))
            assert row is not None
            row.statements = len(made)
            await session.flush()
            audit.record(
                session,
                ctx,
                action="quarter.closed",
                object_type="quarter",
                object_id=str(quarter),
                after={"statements": len(made), "cutoff": cutoff.isoformat(), "time_zone": close.time_zone},
            )
            return CloseResult(quarter, True, made)
    statements = await repo.search(session, partner_id=None, quarter=str(quarter), status=None, limit=1_000_000)
    return CloseResult(quarter, False, list(statements))


async def _earlier_open_quarter(
    session: AsyncSession, quarter: Quarter, closed: set[str], zone: ZoneInfo
) -> Quarter | None:
    """R16: the first quarter before `quarter` that is open and holds entries no statement took yet.

    Entries on hold in a closed quarter wait for the next statement; they do not make it open."""
    since: datetime | None = None
    start = quarter.start(zone)
    while (found := await repo.first_unsettled_at(session, since, start)) is not None:
        own = Quarter.of(found, zone)
        if str(own) not in closed:
            return own
        since = own.end(zone)
    return None


OVERDUE_AFTER = timedelta(days=1)
"""A statement paid on its payout date is on time; it is overdue once that day has passed (UTC)."""

UNPAID_STATES = ("draft", "approved", "in_payment")
"""R16: the states of a statement not paid yet; one still in them after its payout day is overdue (a
statement in a payout run counts until the run is confirmed executed)."""


async def overdue(
    session: AsyncSession,
    now: datetime,
    *,
    limit: int,
    partner_id: uuid.UUID | None = None,
    status: str | None = None,
) -> Sequence[Statement]:
    """R16: statements not marked paid by their payout date, drafts and approved ones (or those of
    one `status`), newest quarter first."""
    states = UNPAID_STATES if status is None else tuple(s for s in UNPAID_STATES if s == status)
    if not states:
        return []
    return await repo.search(
        session, partner_id=partner_id, quarter=None, status=states, limit=limit, payout_by=now - OVERDUE_AFTER
    )


async def overdue_count(session: AsyncSession, now: datetime) -> int:
    """R16: how many statements are overdue (the overview's figure)."""
    return await repo.count_due(session, now - OVERDUE_AFTER, UNPAID_STATES)


@dataclass(frozen=True)
class OverdueQuarter:
    """A partner's payable entries in a quarter still open after its payout day (R16): what its
    statement would say if the quarter were closed now."""

    quarter: str
    partner_id: uuid.UUID
    company: str
    currency: str
    entries: int
    opening_balance: int
    entries_total: int
    payable_amount: int
    payout_date: date


async def _hold_at(session: AsyncSession, cutoff: datetime, now: datetime) -> timedelta:
    """The hold period a close at `cutoff` applies (as `_make_statements` reads it)."""
    try:
        in_force_then = await terms.in_force(session, cutoff - timedelta(microseconds=1))
    except NotFound:
        in_force_then = await terms.in_force(session, now)
    return timedelta(days=in_force_then.terms.hold_days)


async def overdue_quarters(session: AsyncSession, now: datetime) -> list[OverdueQuarter]:
    """R16: the quarters still open after their payout day that hold payable entries, by quarter,
    partner and currency, oldest quarter first. Quarters close in order, so these follow the last
    closed one; each entry is counted in the quarter whose statement would take it (a late entry or
    one on hold in an earlier quarter in the first open one), and a negative total carried from a
    partner's last statement opens its first group."""
    zone = (await terms.in_force(session, now)).terms.zone
    closed = {c.quarter for c in await repo.closes(session)}
    if closed:
        quarter = Quarter.parse(max(closed)).next()
    else:
        first = await repo.first_unsettled_at(session, None, now)
        if first is None:
            return []
        quarter = Quarter.of(first, zone)
    if payout_moment(quarter) + OVERDUE_AFTER > now:
        return []  # the usual case: the first open quarter's payout date is still to come
    carried = await repo.negative_carries(session, str(quarter))
    carries = {(s.partner_id, s.currency): s.closing_balance for s in carried}
    groups: list[tuple[str, uuid.UUID, str, int, int, int, date]] = []
    previous: tuple[datetime, timedelta] | None = None
    while payout_moment(quarter) + OVERDUE_AFTER <= now:
        cutoff = quarter.end(zone)
        hold = await _hold_at(session, cutoff, now)
        if str(quarter) not in closed:
            for partner_id, currency, count, total in await repo.payable_sums(
                session, cutoff=cutoff, hold=hold, after=previous
            ):
                opening = carries.pop((partner_id, currency), 0)
                groups.append((str(quarter), partner_id, currency, count, opening, total, quarter.payout_date()))
        previous = (cutoff, hold)
        quarter = quarter.next()
    companies = await partners_repo.companies(session, [g[1] for g in groups])
    return sorted(
        (
            OverdueQuarter(
                quarter=q,
                partner_id=partner_id,
                company=companies.get(partner_id, ""),
                currency=currency,
                entries=count,
                opening_balance=opening,
                entries_total=total,
                payable_amount=max(0, opening + total),
                payout_date=payout_date,
            )
            for q, partner_id, currency, count, opening, total, payout_date in groups
        ),
        key=lambda g: (g.quarter, str(g.partner_id), g.currency),
    )


async def _make_statements(
    session: AsyncSession, ctx: Context, quarter: Quarter, cutoff: datetime, progress: object
) -> list[Statement]:
    try:
        in_force_then = await terms.in_force(session, cutoff - timedelta(microseconds=1))
    except NotFound:  # a quarter before the first terms: nothing can be dated in it
        in_force_then = await terms.in_force(session, ctx.now)
    hold = timedelta(days=in_force_then.terms.hold_days)
    zone = (await terms.in_force(session, ctx.now)).terms.zone
    closes = {c.quarter: c for c in await repo.closes(session)}
    groups: dict[tuple[uuid.UUID, str], list[tuple[MoneyEntry, str | None]]] = defaultdict(list)
    for entry in await repo.unsettled_entries(session, cutoff):
        if entry.effective_at + hold > cutoff:
            continue  # still on hold: the next statement takes it, labelled
        own = Quarter.of(entry.effective_at, zone)
        label = None
        if own < quarter:
            earlier = closes.get(str(own))
            if earlier is not None and entry.recorded_at >= earlier.closed_at:
                label = f"dated {own}, recorded after {own} was closed"
            elif earlier is not None:
                label = f"dated {own}, held then (hold period)"
            else:
                label = f"dated {own}"
        groups[(entry.partner_id, entry.currency)].append((entry, label))
    carries = {
        (s.partner_id, s.currency): s.closing_balance for s in await repo.negative_carries(session, str(quarter))
    }
    made: list[Statement] = []
    keys = sorted(set(groups) | set(carries), key=lambda k: (str(k[0]), k[1]))
    for index, (partner_id, currency) in enumerate(keys):
        entries = groups.get((partner_id, currency), [])
        opening = carries.get((partner_id, currency), 0)
        total = sum(e.amount for e, _ in entries)
        closing = opening + total
        statement = Statement(
            partner_id=partner_id,
            quarter=str(quarter),
            currency=currency,
            status="draft",
            opening_balance=opening,
            lines_total=total,
            closing_balance=closing,
            payable_amount=max(0, closing),
            payout_date=payout_moment(quarter),
            created_at=ctx.now,
        )
        session.add(statement)
        await session.flush()
        for entry, label in entries:
            assert entry.id is not None
            session.add(
                StatementLine(statement_id=statement.id, money_entry_id=entry.id, amount=entry.amount, label=label)
            )
        made.append(statement)
        record_event(session, "statement.ready", statement, ctx.now)
        if callable(progress):
            progress(index + 1, len(keys))
    await session.flush()
    return made


async def get(session: AsyncSession, statement_id: uuid.UUID, *, partner_id: uuid.UUID | None = None) -> Statement:
    statement = await repo.get(session, statement_id)
    if statement is None or (partner_id is not None and statement.partner_id != partner_id):
        raise NotFound(f"No statement {statement_id}.", code="statement_not_found")
    return statement


async def search(
    session: AsyncSession,
    *,
    partner_id: uuid.UUID | None = None,
    quarter: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> Sequence[Statement]:
    return await repo.search(session, partner_id=partner_id, quarter=quarter, status=status, limit=limit)


@dataclass(frozen=True)
class Line:
    entry: MoneyEntry
    amount: int
    label: str | None
    company: str | None


async def lines(session: AsyncSession, statement_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Line]]:
    result: dict[uuid.UUID, list[Line]] = defaultdict(list)
    for line, entry, company in await repo.lines(session, statement_ids):
        result[line.statement_id].append(Line(entry, line.amount, line.label, company))
    return result


async def lock_for_bulk(session: AsyncSession, statement_ids: Sequence[uuid.UUID]) -> None:
    """Take the row locks a bulk call needs up front, always in the same (id) order."""
    await repo.lock(session, statement_ids)


async def approve(session: AsyncSession, ctx: Context, statement_id: uuid.UUID) -> Statement:
    """Finance approves a draft statement; approving twice changes nothing."""
    statement = await repo.get(session, statement_id, for_update=True)
    if statement is None:
        raise NotFound(f"No statement {statement_id}.", code="statement_not_found")
    if statement.status == "approved":
        return statement
    if statement.status != "draft":
        raise InvalidTransition(f"A {statement.status} statement cannot be approved.", code="statement_not_draft")
    statement.status, statement.approved_at, statement.approved_by = "approved", ctx.now, ctx.actor
    await session.flush()
    audit.record(
        session,
        ctx,
        action="statement.approved",
        object_type="statement",
        object_id=statement.id,
        before={"status": "draft"},
        after={"status": "approved"},
    )
    record_event(session, "statement.approved", statement, ctx.now)
    return statement


async def mark_paid(
    session: AsyncSession, ctx: Context, statement_id: uuid.UUID, *, reference: str, paid_on: date | None
) -> Statement:
    """Record the payment of an approved statement; the same payment again changes nothing."""
    statement = await repo.get(session, statement_id, for_update=True)
    if statement is None:
        raise NotFound(f"No statement {statement_id}.", code="statement_not_found")
    if statement.status == "paid":
        if statement.payment_reference == reference:
            return statement
        raise Conflict(
            f"The statement was paid already under reference {statement.payment_reference!r}.",
            code="statement_already_paid",
        )
    if statement.status == "in_payment":
        raise InvalidTransition(
            "The statement is in a payout run: confirm the run executed, or mark its transfer returned first.",
            code="statement_in_payment",
        )
    if statement.status != "approved":
        raise InvalidTransition("Only an approved statement can be marked paid.", code="statement_not_approved")
    paid_at = datetime(paid_on.year, paid_on.month, paid_on.day, tzinfo=UTC) if paid_on else ctx.now
    statement.status, statement.paid_at, statement.payment_reference = "paid", paid_at, reference
    await session.flush()
    audit.record(
        session,
        ctx,
        action="statement.paid",
        object_type="statement",
        object_id=statement.id,
        before={"status": "approved"},
        after={"status": "paid", "payment_reference": reference},
    )
    record_event(session, "statement.paid", statement, ctx.now)
    return statement


def record_event(
    session: AsyncSession,
    type: events.EventType,
    statement: Statement,
    now: datetime,
    *,
    refs: dict[str, Any] | None = None,
) -> None:
    """A statement event (`statement.paid`, `statement.overdue`, ...) with the statement as it stands."""
    events.record(
        session,
        type,
        events.StatementFacts(
            statement_id=statement.id,
            partner_id=statement.partner_id,
            quarter=statement.quarter,
            currency=statement.currency,
            status=statement.status,
            payable_amount=statement.payable_amount,
            payout_date=statement.payout_date,
            payment_reference=statement.payment_reference,
        ),
        occurred_at=now,
        partner_id=statement.partner_id,
        subject=f"statement:{statement.id}",
        refs=refs,
    )


async def notify_overdue(session: AsyncSession, now: datetime, *, limit: int = 500) -> int:
    """R16: `statement.overdue` once for each statement still unpaid after its payout date, a draft or
    an approved one (the same statements `overdue` lists: paid on the payout date is on time)."""
    late = {f"statement:{s.id}": s for s in await repo.unpaid_before(session, now - OVERDUE_AFTER, UNPAID_STATES)}
    due = (await events.without(session, "statement.overdue", list(late)))[:limit]
    for key in due:
        record_event(session, "statement.overdue", late[key], now)
    return len(due)


async def adjust(
    session: AsyncSession,
    ctx: Context,
    partner_id: uuid.UUID,
    *,
    kind: str,
    amount: int,
    currency: str | None,
    reason: str,
) -> object:
    """A manual adjustment: an entry like any other, dated now, audited, shown to the partner."""
    await partners.get(session, partner_id)
    if amount == 0:
        raise Invalid("An adjustment of 0 changes nothing.", code="adjustment_zero", field="amount")
    in_force = await terms.in_force(session, ctx.now)
    facts = Facts()  # an adjustment is a batch of its own: its entry and totals written below
    ledger = await Ledger.open(session, facts, partner_id, ctx.now, in_force.terms)
    posting = Posting(
        rule=Rule.ADJUSTMENT,
        explanation=f"manual adjustment: {reason}",
        effective_at=ctx.now,
        terms_version=in_force.version,
    )
    if kind == "points":  # R03: the level it moves, decided as for any other entry
        _after, move = level_move(await facts.balance_fact(session, partner_id, ctx.now), amount, in_force.terms)
        entry: object = await ledger.points(amount, posting, level_change=move, need_id=True)
    else:
        if currency is None:
            raise Invalid("A money adjustment needs its currency.", code="currency_missing", field="currency")
        entry = await ledger.money(amount, currency, posting, need_id=True)
        ledger.settle()
    await facts.writes.write(session)
    await session.flush()
    audit.record(
        session,
        ctx,
        action=f"adjustment.{kind}",
        object_type="partner",
        object_id=partner_id,
        after={"amount": amount, "currency": currency, "reason": reason},
    )
    return entry


@dataclass(frozen=True)
class Forecast:
    currency: str
    payout_date: date
    amount: int
    statements: list[Statement]
    accruing: int


async def forecast(session: AsyncSession, partner_id: uuid.UUID, now: datetime) -> list[Forecast]:
    """The next payout date and expected amount per currency: unpaid statements first, then what
    accrues in the open quarter."""
    await partners.get(session, partner_id)
    zone = (await terms.in_force(session, now)).terms.zone
    unpaid = [
        s
        for s in await repo.search(session, partner_id=partner_id, quarter=None, status=None, limit=10_000)
        if s.status != "paid"
    ]
    closes = await repo.closes(session)
    open_quarter = Quarter.parse(max(c.quarter for c in closes)).next() if closes else Quarter.of(now, zone)
    accruing: dict[str, int] = defaultdict(int)
    for entry in await repo.unsettled_entries(session, None, partner_id):
        accruing[entry.currency] += entry.amount
    result = []
    for currency in sorted({s.currency for s in unpaid} | set(accruing)):
        pending = sorted((s for s in unpaid if s.currency == currency), key=lambda s: s.quarter)
        if pending and any(s.payable_amount > 0 for s in pending):
            first = next(s for s in pending if s.payable_amount > 0)
            result.append(
                Forecast(
                    currency,
                    first.payout_date.date(),
                    sum(s.payable_amount for s in pending),
                    pending,
                    accruing[currency],
                )
            )
        else:
            carry = min(0, pending[-1].closing_balance) if pending else 0
            result.append(
                Forecast(
                    currency,
                    open_quarter.payout_date(),
                    max(0, carry + accruing[currency]),
                    pending,
                    accruing[currency],
                )
            )
    return result


async def closes(session: AsyncSession) -> Sequence[QuarterClose]:
    """Closed quarters, oldest first."""
    return await repo.closes(session)


async def quarter_export(session: AsyncSession, quarter: str) -> list[tuple[Statement, str]]:
    """A quarter's statements with each partner's company, for finance."""
    rows = await repo.search(session, partner_id=None, quarter=quarter, status=None, limit=1_000_000)
    names = await partners_repo.companies(session, [s.partner_id for s in rows])
    return [(s, names.get(s.partner_id, "")) for s in rows]
