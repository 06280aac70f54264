"""After a webhook load: do the ledgers hold exactly what the orders sent should have produced?"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.seed import Target


@dataclass(frozen=True)
class Answer:
    http_status: int
    event_id: int | None
    state: str


def read_answers(record_prefix: Path, threads: int) -> list[Answer]:
    """The lines wrk.lua wrote: `<http status> <event_id|-> <receipt status|problem code|->`."""
    answers: list[Answer] = []
    for thread in range(threads):
        path = Path(f"{record_prefix}.{thread}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue
            answers.append(Answer(int(parts[0]), int(parts[1]) if parts[1].isdigit() else None, parts[2]))
    return answers


Balances = dict[uuid.UUID, tuple[int, int]]


async def balances(conn: asyncpg.Connection, partner_ids: list[uuid.UUID]) -> Balances:
    """Points balance and EUR commission balance of each partner."""
    rows = await conn.fetch(
        "SELECT p.id, COALESCE(b.points, 0) AS points, COALESCE(m.amount, 0) AS money FROM partners p "
        "LEFT JOIN partner_balances b ON b.partner_id = p.id "
        "LEFT JOIN partner_money_balances m ON m.partner_id = p.id AND m.currency = 'EUR' "
        "WHERE p.id = ANY($1::uuid[])",
        partner_ids,
    )
    return {r["id"]: (int(r["points"]), int(r["money"])) for r in rows}


@dataclass
class CheckResult:
    scenario: str
    ok: bool
    answered_applied: int
    orders_recorded: int
    committed_not_answered: int
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    answers_by_outcome: dict[str, int] = field(default_factory=dict)
    points_expected: int = 0
    points_found: int = 0
    money_expected: int = 0
    money_found: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "ok": self.ok,
            "answered_applied": self.answered_applied,
            "orders_recorded": self.orders_recorded,
            "committed_not_answered": self.committed_not_answered,
            "points_expected": self.points_expected,
            "points_found": self.points_found,
            "money_expected_minor_units": self.money_expected,
            "money_found_minor_units": self.money_found,
            "answers_by_outcome": self.answers_by_outcome,
            "problems": self.problems,
            "notes": self.notes,
        }

    def summary(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        text = (
            f"ledger check after {self.scenario}: {verdict} - {self.answered_applied:,} orders answered as applied, "
            f"{self.orders_recorded:,} recorded ({self.committed_not_answered} committed while wrk stopped, "
            f"unanswered); points {self.points_found:,} of {self.points_expected:,} expected, "
            f"commission {self.money_found:,} of {self.money_expected:,} expected (EUR minor units)"
        )
        return text + "".join(f"\n    - {p}" for p in [*self.problems[:20], *self.notes])


async def check_ledgers(
    conn: asyncpg.Connection,
    *,
    scenario: str,
    order_prefix: str,
    answers: list[Answer],
    before: Balances,
    targets: list[Target],
    points_per_order: int,
    money_per_order: int,
    max_in_flight: int,
) -> CheckResult:
    """Every order answered `applied` is recorded, credited once with the points and commission its
    lines earn; nothing else was credited; each partner's balances moved by exactly its new entries.
    Orders committed but never answered (in flight when wrk stopped) count as sent, at most one per
    connection."""
    await wait_until_quiet(conn)
    async with conn.transaction(isolation="repeatable_read", readonly=True):  # one snapshot for every query
        return await _check(
            conn,
            scenario=scenario,
            order_prefix=order_prefix,
            answers=answers,
            before=before,
            targets=targets,
            points_per_order=points_per_order,
            money_per_order=money_per_order,
            max_in_flight=max_in_flight,
        )


async def wait_until_quiet(conn: asyncpg.Connection, patience: float = 30.0) -> None:
    """Wait until no other session of this database is inside a statement or transaction: the requests
    wrk left in flight have committed or rolled back."""
    deadline = time.monotonic() + patience
    calm = 0
    while time.monotonic() < deadline and calm < 3:
        busy = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND state IS NOT NULL AND state <> 'idle'"
        )
        calm = calm + 1 if busy == 0 else 0
        await asyncio.sleep(0.1)


async def _check(
    conn: asyncpg.Connection,
    *,
    scenario: str,
    order_prefix: str,
    answers: list[Answer],
    before: Balances,
    targets: list[Target],
    points_per_order: int,
    money_per_order: int,
    max_in_flight: int,
) -> CheckResult:
    like = order_prefix.replace("_", r"\_") + "-%"
    outcomes = Counter(f"{a.http_status} {a.state}" for a in answers)
    applied_ids = {a.event_id for a in answers if a.http_status == 200 and a.state == "applied" and a.event_id}
    problems: list[str] = []
    notes: list[str] = []
    off_path = sum(1 for a in answers if a.state in ("duplicate", "parked") or a.http_status in (401, 422))
    if off_path:
        problems.append(
            f"{off_path} answers were duplicates, parked or refused: the benchmark's orders do not take the "
            f"crediting path ({dict(outcomes)})"
        )
    failures = sum(1 for a in answers if a.http_status >= 500 or a.http_status in (408, 409, 429))
    if failures:
        notes.append(f"{failures} webhook answers were errors (nothing applied for them): {dict(outcomes)}")

    orders = await conn.fetch(
        "SELECT o.order_id, o.partner_id, o.outcome, o.webhook_event_id, e.status AS event_status "
        "FROM orders o LEFT JOIN webhook_events e ON e.id = o.webhook_event_id WHERE o.order_id LIKE $1",
        like,
    )
    by_event = {r["webhook_event_id"]: r for r in orders}
    lost = [eid for eid in applied_ids if eid not in by_event]
    if lost:
        problems.append(f"{len(lost)} orders answered as applied are not recorded (event ids {sorted(lost)[:5]} ...)")
    not_credited = [r["order_id"] for r in orders if r["outcome"] != "credited" or r["event_status"] != "applied"]
    if not_credited:
        problems.append(f"{len(not_credited)} recorded orders were not credited/applied, e.g. {not_credited[:3]}")
    unanswered = [r for r in orders if r["webhook_event_id"] not in applied_ids]
    if len(unanswered) > max_in_flight:
        problems.append(
            f"{len(unanswered)} orders were recorded without an `applied` answer; at most {max_in_flight} "
            "(one per connection) can have been in flight when wrk stopped"
        )

    entries: dict[str, dict[str, tuple[int, int]]] = {}
    for table, column in (("points_entries", "points"), ("money_entries", "amount")):
        rows = await conn.fetch(
            f"SELECT order_id, count(*) AS n, sum({column}) AS total FROM {table} "  # noqa: S608 - fixed names
            "WHERE order_id LIKE $1 GROUP BY order_id",
            like,
        )
        entries[table] = {r["order_id"]: (int(r["n"]), int(r["total"])) for r in rows}
    recorded_ids = {r["order_id"] for r in orders}
    for table, per_order in (("points_entries", points_per_order), ("money_entries", money_per_order)):
        stray = set(entries[table]) - recorded_ids
        if stray:
            problems.append(f"{len(stray)} orders have {table} but no order row")
        wrong = [oid for oid in recorded_ids if entries[table].get(oid, (0, 0)) != (2 if per_order else 0, per_order)]
        if wrong:
            sample = {oid: entries[table].get(oid) for oid in wrong[:3]}
            problems.append(f"{len(wrong)} orders do not have exactly two {table} worth {per_order}: {sample}")

    per_partner = Counter(r["partner_id"] for r in orders)
    after = await balances(conn, [t.partner_id for t in targets])
    moved_wrong = []
    for target in targets:
        n = per_partner.get(target.partner_id, 0)
        p0, m0 = before.get(target.partner_id, (0, 0))
        p1, m1 = after.get(target.partner_id, (0, 0))
        if (p1 - p0, m1 - m0) != (n * points_per_order, n * money_per_order):
            moved_wrong.append((target.index, n, p1 - p0, m1 - m0))
    if moved_wrong:
        problems.append(
            f"{len(moved_wrong)} partners' balances did not move by exactly their new orders' entries "
            f"(partner, orders, points moved, money moved): {moved_wrong[:5]}"
        )
    points_found = sum(v[1] for v in entries["points_entries"].values())
    money_found = sum(v[1] for v in entries["money_entries"].values())
    return CheckResult(
        scenario=scenario,
        ok=not problems,
        answered_applied=len(applied_ids),
        orders_recorded=len(orders),
        committed_not_answered=len(unanswered),
        problems=problems,
        notes=notes,
        answers_by_outcome=dict(outcomes),
        points_expected=len(orders) * points_per_order,
        points_found=points_found,
        money_expected=len(orders) * money_per_order,
        money_found=money_found,
    )
