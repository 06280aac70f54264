"""Writing the append-only ledgers, keeping balances and levels in the same transaction (R03)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import directory as directory_repo
from app.db.repositories.orders import NewLine
from app.db.tables import LevelChange, MoneyEntry, PartnerBalance, PointsEntry
from app.domain import events
from app.domain.batch import Facts, resolved
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
    order_line_id: int | NewLine | None = None
    """The line's id, or the line itself when it is not written yet (its id is filled in with it)."""
    licence_id: str | None = None


class Ledger:
    """One partner's ledgers within a transaction, its balance row locked. Entries and money totals go
    to the batch's `Writes` (`app.domain.batch`), which writes them together."""

    def __init__(self, session: AsyncSession, facts: Facts, balance: PartnerBalance, now: datetime, terms_now: Terms):
        self.session = session
        self.facts = facts
        self.balance = balance
        self.now = now
        self.terms_now = terms_now
        self._pending: dict[tuple[str, str], int] = {}
        """Money totals (balance per currency, accrual per quarter) waiting for `settle()`."""

    @classmethod
    async def open(
        cls,
        session: AsyncSession,
        facts: Facts,
        partner_id: uuid.UUID,
        now: datetime,
        terms_now: Terms,
        *,
        level_at: datetime | None = None,
    ) -> Ledger:
        """The partner's ledger, its balance locked; `level_at`: a moment `level_at` will be asked
        about, whose points are read with the lock (one round trip for both where the database can)."""
        if level_at is None:
            return cls(session, facts, await facts.balance(session, partner_id, now), now, terms_now)
        balance, _before = await facts.balance_and_points_before(session, partner_id, now, level_at)
        return cls(session, facts, balance, now, terms_now)

    @property
    def partner_id(self) -> uuid.UUID:
        return self.balance.partner_id

    async def level_at(self, at: datetime, terms: Terms) -> Level:
        """R03a: the level from entries effective before `at`."""
        return terms.level_for(await self.facts.points_before(self.session, self.partner_id, at))

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

        An entry nobody needs the id of (`need_id`, a level change) is a row the batch writes with the
        others (None is returned); otherwise the entries before it are written first (they keep the
        lower ids) and it is returned, written."""
        if points == 0:
            return None
        values = self._entry(posting, points=points, licence_id=posting.licence_id)
        before = self.balance.level
        self.balance.points += points
        self.balance.level = self.terms_now.level_for(self.balance.points)
        self.balance.updated_at = self.now
        writes = self.facts.writes
        if not need_id and self.balance.level == before:
            writes.points(values, buffered=True)
            return None
        await writes.write_entries(self.session)
        entry = PointsEntry(**resolved(values))
        self.session.add(entry)
        writes.points(values, buffered=False)
        await self.session.flush()  # the entry's id, for the caller or the level change
        assert entry.id is not None
        if self.balance.level != before:
            await directory_repo.set_level_rank(self.session, self.partner_id, self.balance.level)
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
        self,
        amount: int,
        currency: str,
        posting: Posting,
        *,
        rate_bp: int | None = None,
        base: int | None = None,
        need_id: bool = False,
    ) -> MoneyEntry | None:
        """Append a commission (or reversal) entry; its balance and quarter accrual move at `settle()`.
        A row the batch writes with the others (None), or, with `need_id`, the entry, written."""
        if amount == 0:
            return None
        values = self._entry(posting, currency=currency, amount=amount, rate_bp=rate_bp, base_amount=base)
        quarter = str(Quarter.of(posting.effective_at, self.terms_now.zone))
        self._pending[(currency, quarter)] = self._pending.get((currency, quarter), 0) + amount
        if not need_id:
            self.facts.writes.money(values)
            return None
        await self.facts.writes.write_entries(self.session)
        entry = MoneyEntry(**resolved(values))
        self.session.add(entry)
        await self.session.flush()
        return entry

    def settle(self) -> None:
        """Hand the money totals of the entries made so far to the batch's writes; call it once they
        are all made."""
        pending, self._pending = self._pending, {}
        accrued = {(quarter, currency): amount for (currency, quarter), amount in sorted(pending.items()) if amount}
        moved: dict[str, int] = {}
        for (currency, _quarter), amount in pending.items():
            moved[currency] = moved.get(currency, 0) + amount
        self.facts.writes.totals(self.partner_id, accrued, moved)
