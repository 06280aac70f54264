"""Writing the append-only ledgers, keeping balances and levels in the same transaction (R03)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import directory as directory_repo
from app.db.repositories import ledgers as repo
from app.db.repositories import memo
from app.db.repositories import statements as statements_repo
from app.db.tables import LevelChange, MoneyEntry, PartnerBalance, PointsEntry
from app.domain import events
from app.domain.rules.names import Rule
from app.domain.rules.quarters import Quarter
from app.domain.rules.terms import Level, Terms


@dataclass(frozen=True)
class Posting:
    """Where an entry comes from (R21): the order line, the rule and the terms version."""

    rule: Rule
    explanation: str
    effective_at: datetime
    terms_version: int
    order_id: str | None = None
    order_line_id: int | None = None
    licence_id: str | None = None


class Ledger:
    """One partner's ledgers within a transaction, its balance row locked."""

    def __init__(self, session: AsyncSession, balance: PartnerBalance, now: datetime, terms_now: Terms) -> None:
        self.session = session
        self.balance = balance
        self.now = now
        self.terms_now = terms_now
        self._points_before: tuple[datetime, int] | None = None
        """(moment, points effective before it), read with the lock when the caller asked for it."""
        self._pending: dict[tuple[str, str], int] = {}
        """Money totals (balance per currency, accrual per quarter) waiting for `settle()`: one upsert
        each per event instead of one per entry."""

    @classmethod
    async def open(
        cls,
        session: AsyncSession,
        partner_id: uuid.UUID,
        now: datetime,
        terms_now: Terms,
        *,
        level_at: datetime | None = None,
    ) -> Ledger:
        """The partner's ledger, its balance locked; `level_at`: a moment `level_at` will be asked
        about, whose points are read with the lock (one round trip for both)."""
        if level_at is None:
            return cls(session, await repo.lock_balance(session, partner_id, now), now, terms_now)
        balance, before = await repo.lock_balance_with_points_before(session, partner_id, now, level_at)
        ledger = cls(session, balance, now, terms_now)
        ledger._points_before = (level_at, before)
        return ledger

    @property
    def partner_id(self) -> uuid.UUID:
        return self.balance.partner_id

    async def level_at(self, at: datetime, terms: Terms) -> Level:
        """R03a: the level from entries effective before `at`."""
        if self._points_before is not None and self._points_before[0] == at:
            return terms.level_for(self._points_before[1])
        return terms.level_for(await repo.points_before(self.session, self.partner_id, at))

    def _entry(self, posting: Posting, **own: Any) -> dict[str, Any]:
        """An entry's columns: the partner's, the posting's (R21), and the ledger's `own`."""
        return {
            "partner_id": self.partner_id,
            "effective_at": posting.effective_at,
            "recorded_at": self.now,
            "rule": posting.rule,
            "explanation": posting.explanation[:500],
            "order_id": posting.order_id,
            "order_line_id": posting.order_line_id,
            "terms_version": posting.terms_version,
            **own,
        }

    async def points(self, points: int, posting: Posting, *, need_id: bool = False) -> PointsEntry | None:
        """Append a points entry; update the balance and record a level change if any.

        The entry is written at the session's next flush (with the others of the request, in one
        INSERT); callers that need its id flush first. In a batch applied together (a memo on the
        session), an entry nobody needs the id of (`need_id`, a level change) is a plain row the
        batch writes with the others, before anything reads the ledgers; None is returned then."""
        if points == 0:
            return None
        values = self._entry(posting, points=points, licence_id=posting.licence_id)
        memo.note_points(self.session, self.partner_id, posting.effective_at, points)
        before = self.balance.level
        self.balance.points += points
        self.balance.level = self.terms_now.level_for(self.balance.points)
        self.balance.updated_at = self.now
        held = memo.of(self.session)
        if held is not None:
            if not need_id and self.balance.level == before:
                held.points_rows.append(values)
                return None
            await repo.write_pending_entries(self.session)  # the entries before it keep the lower ids
        entry = PointsEntry(**values)
        self.session.add(entry)
        if need_id:
            await self.session.flush()
        if self.balance.level != before:
            await directory_repo.set_level_rank(self.session, self.partner_id, self.balance.level)
            await self.session.flush()  # the entry's id, for the level change; otherwise it waits
            assert entry.id is not None
            self.session.add(
                LevelChange(
                    partner_id=self.partner_id,
                    from_level=before,
                    to_level=self.balance.level,
                    points_after=self.balance.points,
                    changed_at=self.now,
                    points_entry_id=entry.id,
                )
            )
            events.record(
                self.session,
                "partner.level_changed",
                events.PartnerLevelChanged(
                    partner_id=self.partner_id,
                    from_level=before,
                    to_level=self.balance.level,
                    points=self.balance.points,
                    changed_at=self.now,
                    cause=events.LevelCause(points_entry_id=entry.id),
                ),
                occurred_at=self.now,
                partner_id=self.partner_id,
                subject=f"partner:{self.partner_id}",
                refs={"points_entry_id": entry.id},
            )
        return entry

    async def money(
        self, amount: int, currency: str, posting: Posting, *, rate_bp: int | None = None, base: int | None = None
    ) -> MoneyEntry | None:
        """Append a commission (or reversal) entry; its balance and quarter accrual move at `settle()`."""
        if amount == 0:
            return None
        values = self._entry(posting, currency=currency, amount=amount, rate_bp=rate_bp, base_amount=base)
        quarter = str(Quarter.of(posting.effective_at, self.terms_now.zone))
        self._pending[(currency, quarter)] = self._pending.get((currency, quarter), 0) + amount
        held = memo.of(self.session)
        if held is not None:  # in a batch: a plain row, written with the others (see `points`)
            held.money_rows.append(values)
            return None
        entry = MoneyEntry(**values)
        self.session.add(entry)
        return entry

    async def settle(self) -> None:
        """Write the money totals of the entries made so far; call it once they are all made."""
        pending, self._pending = self._pending, {}
        accrued = {(quarter, currency): amount for (currency, quarter), amount in sorted(pending.items()) if amount}
        moved: dict[str, int] = {}
        for (currency, _quarter), amount in pending.items():
            moved[currency] = moved.get(currency, 0) + amount
        held = memo.of(self.session)
        if held is not None:  # a batch writes the totals once, when it ends (every key touched here)
            for (quarter, currency), amount in accrued.items():
                key = (self.partner_id, quarter, currency)
                held.accrued[key] = held.accrued.get(key, 0) + amount
            for currency, amount in moved.items():
                if amount:
                    held.money[(self.partner_id, currency)] = held.money.get((self.partner_id, currency), 0) + amount
            return
        for (quarter, currency), amount in accrued.items():
            await statements_repo.add_accrued(self.session, self.partner_id, quarter, currency, amount)
        for currency, amount in moved.items():
            if amount:
                await repo.add_money_to_balance(self.session, self.partner_id, currency, amount)
