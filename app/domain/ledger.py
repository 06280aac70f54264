"""Writing the append-only ledgers, keeping balances and levels in the same transaction (R03)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.orders import NewLine
from app.db.tables import MoneyEntry, PartnerBalance, PointsEntry
from app.domain.batch import Facts, level_changed, record_level_change, resolved
from app.domain.rules.names import Rule
from app.domain.rules.order_decision import LevelMove
from app.domain.rules.quarters import Quarter
from app.domain.rules.terms import Terms


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
        cls, session: AsyncSession, facts: Facts, partner_id: uuid.UUID, now: datetime, terms_now: Terms
    ) -> Ledger:
        """The partner's ledger, its balance locked (gathered with the event's facts, as a rule)."""
        return cls(session, facts, await facts.balance(session, partner_id, now), now, terms_now)

    @property
    def partner_id(self) -> uuid.UUID:
        return self.balance.partner_id

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

    async def points(
        self,
        points: int,
        posting: Posting,
        *,
        level_change: LevelMove | None,
        need_id: bool = False,
        named_by: Sequence[Callable[[AsyncSession, dict[str, Any], int], None]] = (),
    ) -> PointsEntry | None:
        """Append a points entry, move the balance, and record the level change the decision made of
        it (`level_change`, R03): the writer decides no level.

        An entry the caller does not need the id of is a row the batch writes with the others (None is
        returned; its level change is recorded then, naming it); with `need_id`, the entries before it
        are written first (they keep the lower ids) and it is returned, written."""
        if points == 0:
            assert level_change is None, "an entry of 0 points moves no level"
            return None
        values = self._entry(posting, points=points, licence_id=posting.licence_id)
        self.balance.points += points
        self.balance.updated_at = self.now
        if level_change is not None:
            self._move_level(level_change)
        writes = self.facts.writes
        if not need_id:  # its level change, and what else names it, once the batch writes it
            naming = [*named_by, *([level_changed(level_change)] if level_change is not None else [])]
            writes.points(values, buffered=True, named_by=naming)
            return None
        await writes.write_entries(self.session)
        entry = PointsEntry(**resolved(values))
        self.session.add(entry)
        writes.points(values, buffered=False)
        await self.session.flush()  # the entry's id, for the caller and the level change
        assert entry.id is not None
        for then in named_by:
            then(self.session, values, entry.id)
        if level_change is not None:
            record_level_change(self.session, values, level_change, entry.id)
        return entry

    def _move_level(self, move: LevelMove) -> None:
        """Store a decided level move on the balance it was decided from."""
        if (self.balance.level, self.balance.points) != (move.from_level, move.points_after):
            # The decision was made on other facts than the ones written: never record a wrong level.
            raise RuntimeError(
                f"partner {self.partner_id}: the decision moves {move.from_level} at {move.points_after} points, "
                f"the balance is {self.balance.level} at {self.balance.points}"
            )
        self.balance.level = move.to_level
        self.facts.level_moved(self.partner_id, move.to_level)

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
        self.facts.writes.money(values, buffered=False)
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
