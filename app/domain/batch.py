"""What a batch of store events knows and what it has made so far.

Every store event is applied in a batch (one event is a batch of one): the facts its rules need are
gathered first, for all its events at once, in set-based statements (`app.db.repositories.batch`).
`Facts` answers from them and, for what they do not hold, reads once and keeps the answer. The
events of a batch change some of those facts (a customer gains identifiers, a relationship is
established, a licence is sold, points are credited): the applier changes them only through
`Facts`, which folds each change into what it answers, so the next event of the batch sees the facts
as the earlier events left them. Nothing is invalidated and nothing read up front goes stale.

`Writes` holds the customers and their identifiers, orders, order lines, licences, ledger rows and
money totals the batch made, written together by `write`: one INSERT per table and one upsert per
kind of total. What reads
them, or needs a line's id, first writes what is pending (`write_records`, `write_entries`). The
repositories know nothing of batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.db.repositories import batch as batch_repo
from app.db.repositories import customers as customers_repo
from app.db.repositories import directory as directory_repo
from app.db.repositories import ledgers as ledgers_repo
from app.db.repositories import orders as orders_repo
from app.db.repositories import partners as partners_repo
from app.db.repositories import statements as statements_repo
from app.db.tables import (
    Customer,
    Licence,
    NfrLicence,
    Order,
    OrderLine,
    Partner,
    PartnerBalance,
    Refund,
    Registration,
    Relationship,
)
from app.domain import events, levels, terms
from app.domain.errors import NotFound
from app.domain.rules.identifiers import Identifier
from app.domain.rules.order_decision import BalanceFact, LevelMove
from app.domain.rules.terms import Level


class Contended(Exception):
    """Another transaction wrote what this batch was about to (the same order, a customer's
    identifier) after the batch read it: the batch is applied again, reading afresh."""


class Writes:
    """Orders, their lines and licences, ledger entries and money totals made and not written yet;
    `write` writes them."""

    def __init__(self) -> None:
        self.customers: list[Customer] = []
        """Customers the batch created (each attached to the session once written)."""
        self.identifiers: list[dict[str, Any]] = []
        """Identifiers given to customers, new or known."""
        self.orders: list[dict[str, Any]] = []
        self.lines: list[orders_repo.NewLine] = []
        self.licences: list[tuple[Licence, orders_repo.NewLine]] = []
        """Licences sold, each with the line that sold it (its id is known once the line is written)."""
        self.points_rows: list[dict[str, Any]] = []
        self.named: list[tuple[int, Callable[[AsyncSession, dict[str, Any], int], None]]] = []
        """What names a buffered points entry once it has its id: (the entry's index in `points_rows`,
        what to do with the entry and its id): its level change (R03), the licence it lapsed (R10)."""
        self.refunds: list[dict[str, Any]] = []
        self.money_rows: list[dict[str, Any]] = []
        self.points_added: dict[uuid.UUID, list[tuple[datetime, int]]] = {}
        """Every points entry made, written or not, per partner: (effective_at, points)."""
        self.licence_points: dict[str, int] = {}
        """The points of every entry made, written or not, per licence."""
        self.lines_entered: set[int] = set()
        """The order lines (written before the batch) that an entry made names."""
        self.accrued: dict[tuple[uuid.UUID, str, str], int] = {}
        """Commission accrued, by (partner, quarter, currency): every key an entry touched, even one
        whose total came to 0 (its row exists, as it would had the entries been written one by one)."""
        self.moved: dict[tuple[uuid.UUID, str], int] = {}
        """Money moved, by (partner, currency)."""
        self.levels: dict[uuid.UUID, str] = {}
        """The level each partner whose level moved ends the batch at (the directory's order)."""

    def order(self, order: Order, lines: Sequence[orders_repo.NewLine]) -> None:
        """An order recorded, with its lines (their ids come when they are written)."""
        self.orders.append(order.model_dump())
        self.lines += lines

    def unwritten(self, licence: Licence) -> bool:
        """Whether this licence was sold by the batch and is not written yet."""
        return any(sold is licence for sold, _ in self.licences)

    def pending(self, order_id: str) -> bool:
        """Whether this order is recorded but not written yet."""
        return any(row["order_id"] == order_id for row in self.orders)

    async def write_records(self, session: AsyncSession) -> None:
        """The customers, identifiers, orders, lines and licences made so far: before anything reads
        them, writes a row that names them, or needs a line's id."""
        customers, self.customers = self.customers, []
        identifiers, self.identifiers = self.identifiers, []
        if customers or identifiers:
            try:
                await customers_repo.insert_customers(session, [c.model_dump() for c in customers], identifiers)
            except IntegrityError as exc:  # looked up under their locks first: taken since by another transaction
                raise Contended("an identifier of a customer of the batch was taken meanwhile") from exc
            for customer in customers:  # written: what changes of it from now on is an UPDATE
                make_transient_to_detached(customer)
                session.add(customer)
        refunds, self.refunds = self.refunds, []
        orders, self.orders = self.orders, []
        lines, self.lines = self.lines, []
        licences, self.licences = self.licences, []
        if orders:
            try:
                await orders_repo.insert_orders(session, orders)
            except IntegrityError as exc:  # looked up under its lock first: recorded since by another delivery
                raise Contended("an order of the batch was recorded meanwhile") from exc
        if lines:
            await orders_repo.insert_lines(session, lines)
        if refunds:
            try:
                await orders_repo.insert_refunds(session, refunds)
            except IntegrityError as exc:  # looked up under its order's lock first: recorded since by another delivery
                raise Contended("a refund of the batch was recorded meanwhile") from exc
        for licence, line in licences:
            assert line.id is not None
            licence.order_line_id = line.id
        if licences:
            await orders_repo.insert_licences(session, [licence.model_dump() for licence, _ in licences])
            for licence, _ in licences:  # written: what changes of it from now on is an UPDATE
                make_transient_to_detached(licence)
                session.add(licence)

    def points(
        self,
        row: dict[str, Any],
        *,
        buffered: bool,
        named_by: Sequence[Callable[[AsyncSession, dict[str, Any], int], None]] = (),
    ) -> None:
        """A points entry made; `buffered`: a row to write later (otherwise the caller added it), with
        what names it once it has its id (`named_by`)."""
        self.points_added.setdefault(row["partner_id"], []).append((row["effective_at"], row["points"]))
        if row["licence_id"] is not None:
            self.licence_points[row["licence_id"]] = self.licence_points.get(row["licence_id"], 0) + row["points"]
        self._entered(row)
        if buffered:
            self.named += [(len(self.points_rows), then) for then in named_by]
            self.points_rows.append(row)

    def money(self, row: dict[str, Any], *, buffered: bool = True) -> None:
        """A money entry made; `buffered`: a row to write later (otherwise the caller added it)."""
        self._entered(row)
        if buffered:
            self.money_rows.append(row)

    def _entered(self, row: dict[str, Any]) -> None:
        if isinstance(row["order_line_id"], int):
            self.lines_entered.add(row["order_line_id"])

    def totals(self, partner_id: uuid.UUID, accrued: dict[tuple[str, str], int], moved: dict[str, int]) -> None:
        for (quarter, currency), amount in accrued.items():
            key = (partner_id, quarter, currency)
            self.accrued[key] = self.accrued.get(key, 0) + amount
        for currency, amount in moved.items():
            if amount:
                self.moved[(partner_id, currency)] = self.moved.get((partner_id, currency), 0) + amount

    async def write_entries(self, session: AsyncSession) -> None:
        """The entries made so far, in the order made, and the records they name (before anything
        reads the ledgers)."""
        await self.write_records(session)
        points, self.points_rows = [resolved(r) for r in self.points_rows], []
        money, self.money_rows = [resolved(r) for r in self.money_rows], []
        named, self.named = self.named, []
        if points or money:  # what an entry names (licence, order line) is written: no flush needed
            ids = await ledgers_repo.insert_entries(session, points, money, points_ids=bool(named))
            for index, then in named:
                then(session, points[index], ids[index])

    async def write(self, session: AsyncSession) -> None:
        """Everything made so far: the entries, then the quarter accruals and money balances."""
        await self.write_entries(session)
        accrued = [
            {"partner_id": p, "quarter": quarter, "currency": currency, "accrued": amount}
            for (p, quarter, currency), amount in sorted(self.accrued.items())
        ]
        moved = [{"partner_id": p, "currency": c, "amount": a} for (p, c), a in sorted(self.moved.items())]
        levels, self.accrued, self.moved, self.levels = sorted(self.levels.items()), {}, {}, {}
        for partner_id, level in levels:  # rare: a level change
            await directory_repo.set_level_rank(session, partner_id, level)
        if accrued:
            await statements_repo.add_accrued_many(session, accrued)
        if moved:
            await ledgers_repo.add_money_to_balances(session, moved)


def level_changed(move: LevelMove) -> Callable[[AsyncSession, dict[str, Any], int], None]:
    """What records a decided level move once its entry has an id."""
    return lambda session, entry, entry_id: record_level_change(session, entry, move, entry_id)


def record_level_change(session: AsyncSession, entry: dict[str, Any], move: LevelMove, entry_id: int) -> None:
    """The level history row and `partner.level_changed` event of a points entry's decided move."""
    levels.record_change(
        session,
        entry["partner_id"],
        from_level=move.from_level,
        to_level=move.to_level,
        points=move.points_after,
        changed_at=entry["recorded_at"],
        recorded_at=entry["recorded_at"],
        cause=events.LevelCause(points_entry_id=entry_id),
    )


def resolved(row: dict[str, Any]) -> dict[str, Any]:
    """An entry's columns with its order line's id, once the line is written (`Writes.write_records`):
    an entry made before names the line itself."""
    line = row.get("order_line_id")
    if isinstance(line, orders_repo.NewLine):
        assert line.id is not None, "the line is written before the entries that name it"
        return {**row, "order_line_id": line.id}
    return row


class Facts:
    """The facts a batch's rules ask about: gathered up front, read once when not, folded with what
    the batch's events changed."""

    def __init__(self, gathered: batch_repo.Gathered | None = None) -> None:
        g = gathered or batch_repo.Gathered()
        self.writes = Writes()
        self._locked_orders = set(g.locked_orders)
        self._recorded = dict(g.recorded_orders)
        self._recorded_asked = set(g.locked_orders)
        self._waited_for = set(g.waiting_subjects)
        """Subjects parked events wait for (those asked about, and those this batch parked)."""
        self._terms_refs = g.terms_refs if gathered is not None else None
        self._nfr_asked, self._nfr = set(g.nfr_asked), dict(g.nfr)
        self._identifiers_asked = set(g.identifiers_asked)
        self._owner = dict(g.identifier_owner)
        self._customers = dict(g.customers)
        self._relationships = dict(g.relationships)
        self._registrations = dict(g.registrations)
        self._partners = dict(g.partners)
        self._declared = dict(g.declared)
        self._standing = dict(g.facts)
        self._balances = dict(g.balances)
        self._points_before = dict(g.points_before)
        self._licences_asked, self._licences = set(g.licences_asked), dict(g.licences)
        self._refunds_asked, self._refunds = set(g.refunds_asked), dict(g.refunds)
        self._refunded_orders = dict(g.refunded_orders)
        self._refund_lines = dict(g.refund_lines)
        self._earnings = dict(g.earnings)
        self._standing_base = dict(g.standing)
        """Points standing for a licence before the batch's entries (`Writes.licence_points` adds them)."""
        self._lapse_entries = dict(g.lapse_entries)
        self._renewed_until = dict(g.renewed_until)
        self._lapsed: dict[str, int] = {}
        """The points of the entry each licence this batch lapsed was lapsed by, until it has an id."""
        self._renewed: set[str] = set()
        """Licences a renewal line of the batch names."""

    @classmethod
    async def gather(
        cls,
        session: AsyncSession,
        subjects: Sequence[str],
        *,
        orders: Sequence[batch_repo.OrderReads] = (),
        refunds: Sequence[batch_repo.RefundReads] = (),
        lapses: Sequence[batch_repo.LapseReads] = (),
    ) -> Facts:
        """The facts of a batch of store events: what its orders, refunds and lapses need, and which
        of the `subjects` its events may settle parked events wait for."""
        return cls(await batch_repo.gather(session, orders, subjects, refunds, lapses))

    # Reads: from what was gathered, else read once and kept.

    async def lock_order(self, session: AsyncSession, order_id: str) -> None:
        """Serialise everything about this order id until the transaction ends (`orders.lock_order_id`)."""
        if order_id not in self._locked_orders:
            await orders_repo.lock_order_id(session, order_id)
            self._locked_orders.add(order_id)

    async def recorded_hash(self, session: AsyncSession, order_id: str) -> str | None:
        """The content hash of the order recorded under this id (by this batch too), or None."""
        if order_id not in self._recorded_asked:
            found = await orders_repo.order_hash(session, order_id)
            if found is not None:
                self._recorded[order_id] = found
            self._recorded_asked.add(order_id)
        return self._recorded.get(order_id)

    async def terms_in_force(self, session: AsyncSession, at: datetime) -> terms.TermsVersion:
        """The terms in force at `at`; raises NotFound (`no_terms`) when none was."""
        if self._terms_refs is None:
            return await terms.in_force(session, at)
        ref = next((r for r in self._terms_refs if r[1] <= at), None)
        if ref is None:
            raise NotFound(f"No program terms were in force at {at.isoformat()}.", code="no_terms")
        return await terms.of_ref(session, ref)

    async def terms_then_and_now(
        self, session: AsyncSession, then: datetime, now: datetime
    ) -> tuple[terms.TermsVersion, terms.TermsVersion]:
        current = await self.terms_in_force(session, now)
        if current.effective_from <= then <= now:
            return current, current
        return await self.terms_in_force(session, then), current

    async def partner(self, session: AsyncSession, partner_id: uuid.UUID) -> Partner | None:
        if partner_id not in self._partners:
            found = await partners_repo.get(session, partner_id)
            if found is None:
                return None
            self._partners[partner_id] = found
        return self._partners[partner_id]

    async def declared(self, session: AsyncSession, partner_id: uuid.UUID) -> list[tuple[str, str]]:
        """R22: every (kind, value) the partner ever declared (unchanged while a batch applies)."""
        if partner_id not in self._declared:
            self._declared[partner_id] = await partners_repo.declared_identifiers(session, partner_id)
        return self._declared[partner_id]

    async def standing_facts(self, session: AsyncSession, partner_id: uuid.UUID) -> partners_repo.StandingFacts:
        if partner_id not in self._standing:
            self._standing[partner_id] = await partners_repo.standing_facts(session, partner_id)
        return self._standing[partner_id]

    async def matching(
        self, session: AsyncSession, identifiers: Sequence[Identifier]
    ) -> tuple[list[tuple[uuid.UUID, str, str]], dict[uuid.UUID, Customer]]:
        """`customers_repo.matching`, locked: (customer, kind, value) of each identifier a customer
        holds, by customer, and those customers."""
        pairs = [(i.kind, i.value) for i in identifiers]
        if not self._identifiers_asked.issuperset(pairs):
            matches, found = await customers_repo.matching(session, identifiers, lock=True)
            self._identifiers_asked.update(pairs)
            for owner, kind, value in matches:
                self._owner[(kind, value)] = owner
            self._customers.update(found)
        held: list[tuple[uuid.UUID, str, str]] = []
        for kind, value in pairs:
            named = self._owner.get((kind, value))
            if named is not None:
                held.append((named, kind, value))
        held.sort(key=lambda r: r[0])  # as the statement orders them: by customer
        return held, {r[0]: self._customers[r[0]] for r in held}

    async def relationship(self, session: AsyncSession, customer_id: uuid.UUID) -> Relationship | None:
        """The customer's relationship, locked."""
        if customer_id not in self._relationships:
            self._relationships[customer_id] = await customers_repo.relationship_for(session, customer_id)
        return self._relationships[customer_id]

    async def covering(self, session: AsyncSession, customer_id: uuid.UUID, at: datetime) -> list[Registration]:
        """R07, R08: the customer's registrations (not withdrawn) whose window holds `at`:
        registered_at < at < expires_at."""
        if customer_id not in self._registrations:
            return list(
                await customers_repo.registrations_covering(
                    session, customer_id, at, states=batch_repo.REGISTRATION_STATES
                )
            )
        return [
            r
            for r in self._registrations[customer_id]
            if r.state in batch_repo.REGISTRATION_STATES and r.registered_at < at < r.expires_at
        ]

    async def nfr(self, session: AsyncSession, licence_ids: Sequence[str | None]) -> list[NfrLicence]:
        """R17: the not-for-resale licences among these licence ids."""
        wanted = sorted({i for i in licence_ids if i})
        missing = [i for i in wanted if i not in self._nfr_asked]
        if missing:
            self._nfr.update({n.licence_id: n for n in await directory_repo.nfr_by_licence_ids(session, missing)})
            self._nfr_asked.update(missing)
        return [self._nfr[i] for i in wanted if i in self._nfr]

    async def licences(self, session: AsyncSession, licence_ids: Sequence[str | None]) -> dict[str, Licence]:
        """The licences among these ids that exist (sold by this batch too), locked, by id."""
        wanted = sorted({i for i in licence_ids if i})
        missing = [i for i in wanted if i not in self._licences_asked]
        if missing:
            self._licences.update(await orders_repo.licences_for_update(session, missing))
            self._licences_asked.update(missing)
        return {i: self._licences[i] for i in wanted if i in self._licences}

    async def licence(self, session: AsyncSession, licence_id: str) -> Licence | None:
        return (await self.licences(session, [licence_id])).get(licence_id)

    async def balance(self, session: AsyncSession, partner_id: uuid.UUID, now: datetime) -> PartnerBalance:
        """The partner's balance, created when missing, locked."""
        if partner_id not in self._balances:
            self._balances[partner_id] = await ledgers_repo.lock_balance(session, partner_id, now)
        return self._balances[partner_id]

    async def balance_fact(self, session: AsyncSession, partner_id: uuid.UUID, now: datetime) -> BalanceFact:
        """The partner's points and stored level as the batch has left them (its balance locked)."""
        balance = await self.balance(session, partner_id, now)
        return BalanceFact(balance.points, Level(balance.level))

    async def balance_facts(
        self, session: AsyncSession, partner_ids: Iterable[uuid.UUID | None], now: datetime
    ) -> dict[uuid.UUID, BalanceFact]:
        """`balance_fact` of each partner, locked in partner-id order (the lock order)."""
        return {p: await self.balance_fact(session, p, now) for p in sorted({p for p in partner_ids if p is not None})}

    async def balance_and_points_before(
        self, session: AsyncSession, partner_id: uuid.UUID, now: datetime, at: datetime
    ) -> tuple[PartnerBalance, int]:
        """The balance (locked) and the points effective before `at` (R03a), with what this batch
        credited."""
        if partner_id in self._balances:
            return self._balances[partner_id], await self.points_before(session, partner_id, at)
        # Its balance not read yet: the batch made no entry of this partner, nothing to write first.
        balance, before = await ledgers_repo.lock_balance_with_points_before(session, partner_id, now, at)
        self._balances[partner_id] = balance
        self._points_before[(partner_id, at)] = before - self._added_before(partner_id, at)
        return balance, before

    async def points_before(self, session: AsyncSession, partner_id: uuid.UUID, at: datetime) -> int:
        """R03a: the partner's points effective before `at`, with what this batch credited."""
        if (partner_id, at) not in self._points_before:
            if partner_id in self._balances:  # the batch may have made entries of this partner
                await self.writes.write_entries(session)
            read = await ledgers_repo.points_before(session, partner_id, at)
            self._points_before[(partner_id, at)] = read - self._added_before(partner_id, at)
        return self._points_before[(partner_id, at)] + self._added_before(partner_id, at)

    def _added_before(self, partner_id: uuid.UUID, at: datetime) -> int:
        return sum(points for effective, points in self.writes.points_added.get(partner_id, ()) if effective < at)

    async def refund(self, session: AsyncSession, refund_id: str) -> Refund | None:
        """The refund recorded under this id (by this batch too), or None."""
        if refund_id not in self._refunds_asked:
            found = await orders_repo.get_refund(session, refund_id)
            if found is not None:
                self._refunds[refund_id] = found
            self._refunds_asked.add(refund_id)
        return self._refunds.get(refund_id)

    async def refunded_order(self, session: AsyncSession, order_id: str) -> Order | None:
        """The order a refund names, or None when it has not been received."""
        if self.writes.pending(order_id):  # recorded by this batch: read back as written
            await self.writes.write_records(session)
            self._refunded_orders.pop(order_id, None)
        if self._refunded_orders.get(order_id) is None:
            self._refunded_orders[order_id] = await orders_repo.get_order(session, order_id)
            self._refund_lines.pop(order_id, None)
        return self._refunded_orders[order_id]

    async def refund_lines(self, session: AsyncSession, order_id: str, line_ids: Sequence[str]) -> dict[str, OrderLine]:
        """The order's lines among these store line ids, locked, by line id."""
        held = self._refund_lines.get(order_id)
        if held is None or not held.keys() >= set(line_ids):
            held = {**(held or {}), **await orders_repo.lines_for_update(session, order_id, line_ids)}
            self._refund_lines[order_id] = held
        return {line_id: held[line_id] for line_id in line_ids if line_id in held}

    async def renewed_past(self, session: AsyncSession, licence_id: str, moment: datetime) -> bool:
        """R10: whether a renewal moved the licence's term end past `moment` (`orders.renewed_past`)."""
        if licence_id in self._renewed or licence_id not in self._renewed_until:
            await self.writes.write_records(session)  # the renewals of this batch are read too
            return await orders_repo.renewed_past(session, licence_id, moment)
        until = self._renewed_until[licence_id]
        return until is not None and until > moment

    # Reads of the ledgers themselves: from what was gathered with what the batch made, or read
    # once what the batch made is written.

    async def points_for_licence(self, session: AsyncSession, licence_id: str) -> int:
        """R10: the points standing for the licence, with what this batch credited or took."""
        if licence_id not in self._standing_base:
            await self.writes.write_entries(session)
            read = await ledgers_repo.points_for_licence(session, licence_id)
            self._standing_base[licence_id] = read - self.writes.licence_points.get(licence_id, 0)
        return self._standing_base[licence_id] + self.writes.licence_points.get(licence_id, 0)

    async def points_of_entry(self, session: AsyncSession, entry_id: int) -> int | None:
        """The points of this entry (None when there is none): an entry is never changed."""
        if entry_id not in self._lapse_entries:
            await self.writes.write_entries(session)
            entry = await ledgers_repo.get_points_entry(session, entry_id)
            if entry is None:
                return None
            self._lapse_entries[entry_id] = entry.points
        return self._lapse_entries[entry_id]

    async def line_earnings(
        self, session: AsyncSession, line_ids: Sequence[int]
    ) -> dict[int, ledgers_repo.LineEarnings]:
        """What each line's entries hold, for a refund of it (R14): as gathered, unless the batch made
        entries naming the line (then read again, once they are written: one statement for all)."""
        stale = [i for i in line_ids if i not in self._earnings or i in self.writes.lines_entered]
        if stale:
            await self.writes.write_entries(session)
            self._earnings.update(
                await ledgers_repo.line_earnings(
                    session,
                    stale,
                    money_rules=batch_repo.REFUNDED_MONEY,
                    points_rules=batch_repo.REFUNDED_POINTS,
                    reversal=batch_repo.REVERSAL,
                )
            )
            self.writes.lines_entered.difference_update(stale)  # read with those entries
        return {i: self._earnings[i] for i in line_ids}

    # Changes: the one way the applier changes the facts above, each folded in.

    def add_customer(self, customer: Customer, identifiers: Sequence[Identifier]) -> None:
        """A customer the batch created, with these identifiers: written with the batch's other records."""
        self.writes.customers.append(customer)
        self._customers[customer.id] = customer
        self.add_identifiers(customer, identifiers)

    def add_identifiers(self, customer: Customer, identifiers: Sequence[Identifier]) -> None:
        """Identifiers given to a customer (R05): written with the batch's other records."""
        for ident in identifiers:
            self.writes.identifiers.append({"customer_id": customer.id, "kind": ident.kind, "value": ident.value})
            self._owner[(ident.kind, ident.value)] = customer.id
            self._identifiers_asked.add((ident.kind, ident.value))

    def establish(self, session: AsyncSession, relationship: Relationship) -> None:
        session.add(relationship)
        self._relationships[relationship.customer_id] = relationship

    def level_moved(self, partner_id: uuid.UUID, level: str) -> None:
        """A partner's level moved (its balance row holds it); the directory's order follows at `write`."""
        self.writes.levels[partner_id] = level

    def sell(self, licence: Licence, line: orders_repo.NewLine) -> None:
        """A licence the order line `line` sells (written with it)."""
        self.writes.licences.append((licence, line))
        self._licences[licence.licence_id] = licence
        self._licences_asked.add(licence.licence_id)

    def waited_for(self, subject: str) -> bool:
        """Whether a parked event waits for this subject (`order:<id>`, `licence:<id>`): one of those
        the batch asked about up front, or one an event of the batch parked waiting for."""
        return subject in self._waited_for

    def parked_waiting_for(self, subject: str) -> None:
        """An event of the batch was parked waiting for this subject: a later event may settle it."""
        self._waited_for.add(subject)

    def record_refund(self, refund: Refund) -> None:
        """A refund the batch recorded: written with the batch's other records."""
        self.writes.refunds.append(refund.model_dump())
        self._refunds[refund.refund_id] = refund
        self._refunds_asked.add(refund.refund_id)

    def lapse(self, licence: Licence, points: int) -> Callable[[AsyncSession, dict[str, Any], int], None]:
        """A licence lapsed by an entry of `points` (R10), the entry not written yet: a renewal of the
        batch asks what it took (`lapse_taken`); the licence names the entry once it has an id."""
        self._lapsed[licence.licence_id] = points

        def name(session: AsyncSession, entry: dict[str, Any], entry_id: int) -> None:
            licence.lapse_entry_id = entry_id
            self._lapse_entries[entry_id] = points

        return name

    async def lapse_taken(self, session: AsyncSession, licence: Licence) -> int | None:
        """R10: the points of the entry that lapsed the licence (by this batch too), or None when none did."""
        if licence.licence_id in self._lapsed and licence.lapse_entry_id is None:
            return self._lapsed[licence.licence_id]
        if licence.lapse_entry_id is None:
            return None
        return await self.points_of_entry(session, licence.lapse_entry_id)

    def record(self, order: Order, lines: Sequence[orders_repo.NewLine]) -> None:
        """An order the batch recorded, with its lines: written with the batch's other records."""
        self._renewed.update(line.licence_id for line in lines if line.kind == "renewal" and line.licence_id)
        self.writes.order(order, lines)
        self._recorded[order.order_id] = order.content_hash
        self._recorded_asked.add(order.order_id)
