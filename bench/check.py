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
    answered_accepted: int
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
            "answered_accepted": self.answered_accepted,
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
            f"ledger check after {self.scenario}: {verdict} - {self.answered_accepted:,} orders answered as accepted, "
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
    also_prefixes: tuple[str, ...] = (),
    patience: float = 300.0,
) -> CheckResult:
    """Every order answered `202 accepted` is recorded, applied and credited once with the points and
    commission its lines earn; nothing else was credited; each partner's balances moved by exactly its
    new entries. Orders committed but never answered (in flight when wrk stopped) count as sent, at
    most one per connection. Orders of `also_prefixes` (a warm-up applied after the snapshot `before`)
    must be credited exactly too and move the balances, but no answers were recorded for them.

    Accepted events are applied by a worker after the answer: the check first waits (at most
    `patience` seconds) until no accepted event is left."""
    left = await wait_until_applied(conn, patience)
    await wait_until_quiet(conn)
    if left:
        return CheckResult(
            scenario=scenario,
            ok=False,
            answered_accepted=0,
            orders_recorded=0,
            committed_not_answered=0,
            problems=[f"{left} accepted events were still not applied after {patience:g} s"],
        )
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
            also_prefixes=also_prefixes,
        )


async def backlog(conn: asyncpg.Connection) -> int:
    """Store events accepted and not yet applied (what GET /v1/jobs shows as `store_events.accepted`)."""
    return int(await conn.fetchval("SELECT count(*) FROM webhook_events WHERE status = 'accepted'"))


async def wait_until_applied(conn: asyncpg.Connection, patience: float = 300.0) -> int:
    """Wait until the workers have applied every accepted store event, at most `patience` seconds;
    returns how many were left (0: all applied)."""
    deadline = time.monotonic() + patience
    while True:
        left = await backlog(conn)
        if left == 0 or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.1)


async def apply_batches(conn: asyncpg.Connection, order_prefixes: list[str]) -> list[tuple[float, int, int]]:
    """The worker's batches that applied the orders of these prefixes: (applied_at as epoch seconds,
    events applied, events parked or duplicate), in order. The applier stamps one batch's events
    with the moment the batch began."""
    rows = await conn.fetch(
        "SELECT extract(epoch FROM e.applied_at)::float8 AS at, count(*) FILTER (WHERE e.status = 'applied') AS ok, "
        "count(*) FILTER (WHERE e.status <> 'applied') AS other FROM webhook_events e "
        "WHERE e.subject LIKE ANY($1::text[]) AND e.applied_at IS NOT NULL GROUP BY e.applied_at ORDER BY e.applied_at",
        [_subject_like(p) for p in order_prefixes],
    )
    return [(float(r["at"]), int(r["ok"]), int(r["other"])) for r in rows]


async def apply_latencies_ms(conn: asyncpg.Connection, order_prefix: str) -> tuple[list[float], int]:
    """Accepted -> applied latency of each applied event of the prefix (applied_at - received_at, in
    ms, sorted), and how many of its events are not applied."""
    rows = await conn.fetch(
        "SELECT e.status, extract(epoch FROM e.applied_at - e.received_at)::float8 * 1000 AS ms "
        "FROM webhook_events e WHERE e.subject LIKE $1",
        _subject_like(order_prefix),
    )
    latencies = sorted(float(r["ms"]) for r in rows if r["status"] == "applied" and r["ms"] is not None)
    return latencies, sum(1 for r in rows if r["status"] != "applied")


def _like(prefix: str) -> str:
    return prefix.replace("_", r"\_") + "-%"


def _subject_like(prefix: str) -> str:
    return "order:" + _like(prefix)


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
    also_prefixes: tuple[str, ...],
) -> CheckResult:
    like = _like(order_prefix)
    likes = [like, *(_like(p) for p in also_prefixes)]
    outcomes = Counter(f"{a.http_status} {a.state}" for a in answers)
    applied_ids = {a.event_id for a in answers if a.http_status == 202 and a.state == "accepted" and a.event_id}
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

    all_orders = await conn.fetch(
        "SELECT o.order_id, o.partner_id, o.outcome, o.webhook_event_id, e.status AS event_status "
        "FROM orders o LEFT JOIN webhook_events e ON e.id = o.webhook_event_id WHERE o.order_id LIKE ANY($1::text[])",
        likes,
    )
    orders = [r for r in all_orders if r["order_id"].startswith(order_prefix + "-")]
    unapplied = await conn.fetchval(
        "SELECT count(*) FROM webhook_events WHERE subject LIKE $1 AND status <> 'applied'", "order:" + like
    )
    if unapplied:
        problems.append(f"{unapplied} store events of the scenario ended other than applied (parked, duplicate)")
    by_event = {r["webhook_event_id"]: r for r in orders}
    lost = [eid for eid in applied_ids if eid not in by_event]
    if lost:
        problems.append(f"{len(lost)} orders answered as accepted are not recorded (event ids {sorted(lost)[:5]} ...)")
    not_credited = [r["order_id"] for r in all_orders if r["outcome"] != "credited" or r["event_status"] != "applied"]
    if not_credited:
        problems.append(f"{len(not_credited)} recorded orders were not credited/applied, e.g. {not_credited[:3]}")
    unanswered = [r for r in orders if r["webhook_event_id"] not in applied_ids]
    if len(unanswered) > max_in_flight:
        problems.append(
            f"{len(unanswered)} orders were recorded without an `accepted` answer; at most {max_in_flight} "
            "(one per connection) can have been in flight when wrk stopped"
        )

    entries: dict[str, dict[str, tuple[int, int]]] = {}
    for table, column in (("points_entries", "points"), ("money_entries", "amount")):
        rows = await conn.fetch(
            f"SELECT order_id, count(*) AS n, sum({column}) AS total FROM {table} "  # noqa: S608 - fixed names
            "WHERE order_id LIKE ANY($1::text[]) GROUP BY order_id",
            likes,
        )
        entries[table] = {r["order_id"]: (int(r["n"]), int(r["total"])) for r in rows}
    recorded_ids = {r["order_id"] for r in all_orders}
    for table, per_order in (("points_entries", points_per_order), ("money_entries", money_per_order)):
        stray = set(entries[table]) - recorded_ids
        if stray:
            problems.append(f"{len(stray)} orders have {table} but no order row")
        wrong = [oid for oid in recorded_ids if entries[table].get(oid, (0, 0)) != (2 if per_order else 0, per_order)]
        if wrong:
            sample = {oid: entries[table].get(oid) for oid in wrong[:3]}
            problems.append(f"{len(wrong)} orders do not have exactly two {table} worth {per_order}: {sample}")

    per_partner = Counter(r["partner_id"] for r in all_orders)
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
    mine = order_prefix + "-"
    points_found = sum(v[1] for k, v in entries["points_entries"].items() if k.startswith(mine))
    money_found = sum(v[1] for k, v in entries["money_entries"].items() if k.startswith(mine))
    return CheckResult(
        scenario=scenario,
        ok=not problems,
        answered_accepted=len(applied_ids),
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
