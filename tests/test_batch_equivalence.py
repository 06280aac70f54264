"""A batch of store events applied together (its reads done up front, its writes at its end) leaves
exactly what the same events applied one at a time leave, however they depend on one another.

Each test runs one scenario twice on fresh partners and customers: with a worker taking one event
per pass (every event alone, in a savepoint of its own), then with a worker taking them all in one
pass, which must apply them together (no per-event pass), and compares what each left."""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from app.db.tables import Customer as CustomerRow
from app.db.tables import CustomerIdentifier, Licence, Order, PartnerMoneyBalance
from tests.conftest import Api, watch_applied_together
from tests.program import Customer, Program, line, order_event, refund_event, t


@dataclass
class _Applied:
    outcomes: list[tuple[str, str]]
    words: list[list[str]]
    """Each statement the applier sent while applying, split into words."""


Scenario = Callable[[Program, int, str], Awaitable[dict[str, Any]]]


@pytest.fixture
def program(api: Api) -> Program:
    return Program(api)


_PASSES: list[int] = []
"""The sizes of the groups of events the applier applied together since the last `_apply` began."""
_WATCHED: dict[str, list[int]] = {}
"""`watch_applied_together`'s list for the running test."""


async def _equivalent(program: Program, monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> dict[str, Any]:
    _WATCHED["sizes"] = watch_applied_together(monkeypatch)
    one_by_one = await scenario(program, 1, "alone")
    assert _PASSES and set(_PASSES) == {1}  # every event alone
    together = await scenario(program, 100, "together")
    assert len(_PASSES) == 1 and _PASSES[0] > 1  # applied together, in one pass
    assert together == one_by_one
    return together


async def _apply(program: Program, batch: int, events: list[dict[str, Any]], tag: str) -> list[tuple[str, str]]:
    """Deliver the events, then let a worker taking `batch` per pass apply them; their outcomes."""
    program.api.app.state.worker.settings.worker_batch = batch
    ids = []
    for n, event in enumerate(events):
        response = await program.api.deliver(event, f"{tag}-{n}-{uuid.uuid4().hex[:8]}")
        assert response.status_code == 202, response.text
        ids.append(response.json()["event_id"])
    applied = _WATCHED["sizes"]
    first = len(applied)
    await program.api.drain(scheduled=False)
    _PASSES[:] = applied[first:]
    outcomes = []
    for event_id in ids:
        stored = (await program.client.get(f"/v1/webhook-events/{event_id}", headers=program.api.admin)).json()
        outcomes.append((stored["status"], stored["reason_code"]))
    return outcomes


async def _rows(program: Program, stmt: Any) -> list[Any]:
    async with program.api.app.state.session_factory() as session:
        return list((await session.execute(stmt)).all())


async def _points(program: Program, partner: tuple[str, str]) -> list[tuple[str, int]]:
    return sorted((e["rule"], e["points"]) for e in await program.points(partner))


async def _renewal_then_stale_lapse(program: Program, batch: int, tag: str) -> dict[str, Any]:
    a = await program.partner()
    c = Customer.new("Lapse")
    await program.register(a, c, at="2026-01-10T09:00:00Z")
    licence = f"lic-{tag}-{uuid.uuid4().hex[:6]}"
    first_term = t("2026-02-15T00:00:00Z")
    await program.order(
        c,
        [line("server-enterprise", 2, 20000, licence_id=licence, term_end=first_term)],
        placed_at="2026-01-20T10:00:00Z",
    )
    program.at("2026-03-01T10:00:00Z")
    renewal = line(
        "server-enterprise", 2, 20000, kind="renewal", licence_id=licence, term_end=t("2027-02-15T00:00:00Z")
    )
    lapse = {
        "type": "licence.lapsed",
        "occurred_at": "2026-02-15T00:00:00Z",
        "data": {"licence_id": licence, "lapsed_at": "2026-02-15T00:00:00Z"},
    }
    outcomes = await _apply(
        program, batch, [order_event(c, [renewal], placed_at=t("2026-02-14T10:00:00Z")), lapse], tag
    )
    status, term_end = (
        await _rows(program, select(Licence.status, Licence.term_end).where(Licence.licence_id == licence))
    )[0]
    return {"outcomes": outcomes, "points": await _points(program, a), "licence": (status, term_end.isoformat())}


async def test_r10_a_renewal_then_a_stale_lapse_of_its_licence(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lapse reads the licence the renewal just extended: it is stale, nothing lapses."""
    left = await _equivalent(program, monkeypatch, _renewal_then_stale_lapse)
    assert left["outcomes"][1] == ("applied", "renewed_since") and left["licence"][0] == "active"


async def _upsell_then_lapse(program: Program, batch: int, tag: str) -> dict[str, Any]:
    a = await program.partner()
    c = Customer.new("Upsell")
    await program.register(a, c, at="2026-01-10T09:00:00Z")
    licence = f"lic-{tag}-{uuid.uuid4().hex[:6]}"
    term_end = t("2026-02-15T00:00:00Z")
    await program.order(
        c, [line("desktop", 2, 20000, licence_id=licence, term_end=term_end)], placed_at="2026-01-20T10:00:00Z"
    )
    program.at("2026-03-01T10:00:00Z")
    upsell = line("desktop", 1, 10000, licence_id=licence, term_end=term_end)  # one more on the same licence
    lapse = {
        "type": "licence.lapsed",
        "occurred_at": "2026-02-15T00:00:00Z",
        "data": {"licence_id": licence, "lapsed_at": "2026-02-15T00:00:00Z"},
    }
    outcomes = await _apply(program, batch, [order_event(c, [upsell], placed_at=t("2026-02-10T10:00:00Z")), lapse], tag)
    return {"outcomes": outcomes, "points": await _points(program, a)}


async def test_r10_an_upsell_then_a_lapse_of_its_licence(program: Program, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lapse, gathered with the points standing for its licence before the batch, takes the
    points the batch's up-sell added to it too."""
    left = await _equivalent(program, monkeypatch, _upsell_then_lapse)
    assert left["outcomes"] == [("applied", "credited"), ("applied", "lapsed")]
    assert sum(points for _, points in left["points"]) == 0  # 2 + 1 credited, 3 revoked


async def _new_then_renewed(program: Program, batch: int, tag: str) -> dict[str, Any]:
    a = await program.partner()
    c = Customer.new("Renew")
    await program.register(a, c, at="2026-01-10T09:00:00Z")
    await program.order(
        c, [line("desktop", 1, 10000)], placed_at="2026-01-20T10:00:00Z"
    )  # its balance is read up front
    program.at("2026-03-01T10:05:00Z")
    licence = f"lic-{tag}-{uuid.uuid4().hex[:6]}"
    events = [
        order_event(c, [line("server-enterprise", 6, 60000, licence_id=licence)], placed_at=t("2026-03-01T10:00:01Z")),
        order_event(
            c,
            [line("server-enterprise", 4, 40000, kind="renewal", licence_id=licence)],
            placed_at=t("2026-03-01T10:00:02Z"),
        ),
    ]
    outcomes = await _apply(program, batch, events, tag)
    (quantity,) = (await _rows(program, select(Licence.quantity).where(Licence.licence_id == licence)))[0]
    return {"outcomes": outcomes, "points": await _points(program, a), "quantity": quantity}


async def test_r10_a_licence_made_and_renewed_for_fewer_in_one_batch(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    left = await _equivalent(program, monkeypatch, _new_then_renewed)
    assert left["quantity"] == 4 and ("R10", -10) in left["points"]


async def _established_then_bought_by_another(program: Program, batch: int, tag: str) -> dict[str, Any]:
    a, b = await program.partner(), await program.partner()
    d, c = Customer.new("Dee"), Customer.new("Cee")
    await program.register(a, d, at="2026-01-10T09:00:00Z")
    await program.register(a, c, at="2026-01-10T09:00:00Z")
    await program.order(
        d, [line("desktop", 1, 10000)], placed_at="2026-01-20T10:00:00Z"
    )  # a's balance is read up front
    program.at("2026-03-01T10:05:00Z")
    c.vat_id = "FR40303265045" if tag == "alone" else "FR40303265046"  # an identifier the second order adds
    events = [
        order_event(d, [line("desktop", 1, 10000)], placed_at=t("2026-03-01T10:00:01Z")),
        order_event(c, [line("desktop", 1, 10000)], placed_at=t("2026-03-01T10:00:02Z")),  # establishes a-c
        order_event(c, [line("desktop", 1, 10000)], placed_at=t("2026-03-01T10:00:03Z"), buyer=b[0]),
    ]
    outcomes = await _apply(program, batch, events, tag)
    (customer_id,) = (
        await _rows(
            program,
            select(CustomerIdentifier.customer_id).where(
                CustomerIdentifier.kind == "store_id", CustomerIdentifier.value == c.store_customer_id
            ),
        )
    )[0]
    (first,) = (await _rows(program, select(CustomerRow.first_purchase_at).where(CustomerRow.id == customer_id)))[0]
    return {"outcomes": outcomes, "first_purchase_at": first.isoformat(), "points": await _points(program, a)}


async def test_r08_a_relationship_made_in_the_batch_holds_against_another_partner(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    left = await _equivalent(program, monkeypatch, _established_then_bought_by_another)
    assert left["outcomes"][2] == ("applied", "customer_of_another_partner")


async def _order_and_full_refund(program: Program, batch: int, tag: str) -> dict[str, Any]:
    a = await program.partner()
    c = Customer.new("Refund")
    await program.register(a, c, at="2026-01-10T09:00:00Z")
    program.at("2026-03-01T10:05:00Z")
    order_id = f"ord-{tag}-{uuid.uuid4().hex[:6]}"
    events = [
        order_event(
            c, [line("desktop", 1, 10000, line_id="x1")], placed_at=t("2026-03-01T10:00:01Z"), order_id=order_id
        ),
        refund_event(order_id, [("x1", 10000)], at=t("2026-03-01T10:00:30Z")),
    ]
    outcomes = await _apply(program, batch, events, tag)
    balances = await _rows(
        program,
        select(PartnerMoneyBalance.currency, PartnerMoneyBalance.amount).where(
            PartnerMoneyBalance.partner_id == uuid.UUID(a[0])
        ),
    )
    status = await program.status(a)
    return {"outcomes": outcomes, "balances": [tuple(r) for r in balances], "status": status["commission_balances"]}


async def test_r14_an_order_and_its_full_refund_leave_a_balance_of_zero(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    left = await _equivalent(program, monkeypatch, _order_and_full_refund)
    assert left["balances"] == [("EUR", 0)]


async def _late_orders(program: Program, batch: int, tag: str) -> dict[str, Any]:
    a = await program.partner()
    d, c = Customer.new("Late"), Customer.new("Later")
    await program.register(a, d, at="2026-01-10T09:00:00Z")
    await program.register(a, c, at="2026-01-10T09:00:00Z")
    await program.order(d, [line("desktop", 1, 10000)], placed_at="2026-02-20T10:00:00Z", buyer=a[0])  # resale
    program.at("2026-03-01T10:05:00Z")
    ids = [f"o{n}-{tag}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    events = [
        order_event(d, [line("desktop", 1, 10000)], placed_at=t("2026-02-01T10:00:00Z"), order_id=ids[0]),
        order_event(d, [line("desktop", 1, 10000)], placed_at=t("2026-02-02T10:00:00Z"), order_id=ids[1]),
        order_event(c, [line("desktop", 1, 10000)], placed_at=t("2026-02-03T10:00:00Z"), order_id=ids[2]),
    ]
    outcomes = await _apply(program, batch, events, tag)
    levels = await _rows(program, select(Order.order_id, Order.level).where(Order.order_id.in_(ids)))
    return {
        "outcomes": outcomes,
        "levels": sorted((ids.index(r[0]), r[1]) for r in levels),
        "money": sorted((e["rule"], e["amount"]) for e in await program.money(a)),
    }


async def test_r03a_late_orders_take_the_level_earlier_ones_of_the_batch_gave(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Orders placed before the partner's only points: each one's level counts the points of the
    earlier ones, whether read up front (the first two) or not (a relationship the batch makes)."""
    await _equivalent(program, monkeypatch, _late_orders)


async def _lapse_among_orders(program: Program, batch: int, tag: str) -> dict[str, Any]:
    a = await program.partner()
    c, d = Customer.new("Lapsing"), Customer.new("Ordering")
    await program.register(a, c, at="2026-01-10T09:00:00Z")
    await program.register(a, d, at="2026-01-10T09:00:00Z")
    licence = f"lic-{tag}-{uuid.uuid4().hex[:6]}"
    await program.order(
        c,
        [line("server-enterprise", 3, 30000, licence_id=licence, term_end=t("2026-02-15T00:00:00Z"))],
        placed_at="2026-01-20T10:00:00Z",
    )
    program.at("2026-05-01T10:05:00Z")
    lapse = {
        "type": "licence.lapsed",
        "occurred_at": "2026-02-15T00:00:00Z",
        "data": {"licence_id": licence, "lapsed_at": "2026-02-15T00:00:00Z"},
    }
    events = [
        order_event(d, [line("server-enterprise", 2, 20000)], placed_at=t("2026-05-01T10:00:01Z")),
        lapse,
        order_event(d, [line("desktop", 1, 10000)], placed_at=t("2026-05-01T10:00:02Z")),
    ]
    outcomes = await _apply(program, batch, events, tag)
    (status, lapse_entry) = (
        await _rows(program, select(Licence.status, Licence.lapse_entry_id).where(Licence.licence_id == licence))
    )[0]
    lapsed_by = [e for e in await program.points(a) if e["id"] == lapse_entry]
    return {
        "outcomes": outcomes,
        "points": await _points(program, a),
        "licence": status,
        "lapsed_by": [(e["rule"], e["points"]) for e in lapsed_by],
    }


async def test_r10_a_lapse_among_orders_names_the_entry_that_revoked_its_points(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    left = await _equivalent(program, monkeypatch, _lapse_among_orders)
    assert left["outcomes"][1] == ("applied", "lapsed") and left["lapsed_by"] == [("R10", -15)]


async def _orders_to_companies_the_partner_declared_before(program: Program, batch: int, tag: str) -> dict[str, Any]:
    a = await program.partner()
    c, e = Customer.new("Ownco"), Customer.new("Former")
    await program.register(a, c, at="2026-01-10T09:00:00Z")
    await program.order(c, [line("desktop", 1, 10000)], placed_at="2026-01-20T10:00:00Z")  # a's relationship
    headers = program.api.bearer(a[1])
    program.at("2026-02-01T09:00:00Z")  # the partner's website was, for a day, its customer's and e's
    for website in (f"https://www.{c.domain}", f"https://{e.domain}", f"https://{tag}-{uuid.uuid4().hex[:6]}.example"):
        assert (
            await program.client.patch(f"/v1/partners/{a[0]}", json={"website": website}, headers=headers)
        ).is_success
    program.at("2026-03-01T10:05:00Z")
    events = [
        order_event(c, [line("desktop", 1, 10000)], placed_at=t("2026-03-01T10:00:01Z")),  # by the relationship
        order_event(e, [line("desktop", 1, 10000)], placed_at=t("2026-03-01T10:00:02Z"), buyer=a[0]),  # bought
    ]
    outcomes = await _apply(program, batch, events, tag)
    flags = (await program.client.get("/v1/order-flags?kind=own_company&limit=200", headers=program.api.admin)).json()
    return {
        "outcomes": outcomes,
        "points": await _points(program, a),
        "flagged": sorted(
            f["detail"].replace(str(c.domain), "<customer>").replace(str(e.domain), "<bought for>")
            for f in flags["items"]
            if f["partner_id"] == a[0]
        ),
    }


async def test_r22_orders_to_companies_the_partner_declared_before_earn_nothing(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both the partner a relationship credits and the buying partner are checked against every
    identifier they ever declared, whether read up front for the batch or one event at a time."""
    left = await _equivalent(program, monkeypatch, _orders_to_companies_the_partner_declared_before)
    assert left["outcomes"] == [("applied", "own_company")] * 2
    assert left["points"] == [("R09", 1)]  # the first order's only
    assert left["flagged"] == [
        "the end customer is the partner's own company (domain <bought for>)",
        "the end customer is the partner's own company (domain <customer>)",
    ]


async def _late_orders_meeting_another_relationship(program: Program, batch: int, tag: str) -> dict[str, Any]:
    a, b = await program.partner(), await program.partner()
    c, d = Customer.new("Contested"), Customer.new("Disputed")
    for customer in (c, d):
        assert (await program.register(a, customer, at="2026-03-02T09:00:00Z")).status_code == 201
        assert (await program.register(b, customer, at="2026-06-05T09:00:00Z")).status_code == 201
    # b's relationships: a resale to c, a direct order of d, both after a's windows ended.
    await program.order(c, [line("desktop", 2, 20000)], placed_at="2026-06-10T10:00:00Z", buyer=b[0])
    await program.order(d, [line("server-business", 1, 30000)], placed_at="2026-06-10T11:00:00Z")
    program.at("2026-06-20T10:00:00Z")
    events = [  # placed in April, inside a's windows, delivered now
        order_event(c, [line("server-enterprise", 1, 50000)], placed_at=t("2026-04-10T10:00:00Z")),
        order_event(d, [line("desktop", 3, 30000)], placed_at=t("2026-04-11T10:00:00Z"), buyer=a[0]),
    ]
    outcomes = await _apply(program, batch, events, tag)
    ids = [e["data"]["order_id"] for e in events]
    orders = await _rows(
        program, select(Order.order_id, Order.partner_id, Order.outcome).where(Order.order_id.in_(ids))
    )
    flags = (await program.client.get("/v1/order-flags?kind=relationship_conflict", headers=program.api.admin)).json()
    return {
        "outcomes": outcomes,
        "orders": sorted((ids.index(o), p, outcome) for o, p, outcome in orders),
        "points": {"a": await _points(program, a), "b": await _points(program, b)},
        "flagged": sorted(
            (ids.index(f["order_id"]), f["partner_id"] == a[0]) for f in flags["items"] if f["order_id"] in ids
        ),
    }


async def test_r08_late_orders_meeting_another_partners_relationship_earn_nothing_and_are_flagged(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer has one relationship: an order placed within a's registration, delivered after b's
    relationship was made, leaves b's relationship as it is and is recorded, direct or bought by a."""
    left = await _equivalent(program, monkeypatch, _late_orders_meeting_another_relationship)
    assert left["outcomes"] == [("applied", "relationship_conflict")] * 2
    assert left["orders"] == [(0, None, "relationship_conflict"), (1, None, "relationship_conflict")]
    assert left["points"] == {"a": [], "b": [("R09", 2), ("R09", 4)]}
    assert left["flagged"] == [(0, True), (1, True)]


async def test_a_batch_writes_each_table_in_one_insert(program: Program, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a batch of orders makes is written together: customers and their identifiers, orders, lines,
    licences, relationships, ledger entries, domain events: one INSERT per table, whatever the number
    of orders (statements counted while the batch applies, on the database itself)."""
    partners = [await program.partner() for _ in range(2)]
    registered = [Customer.new("Registered") for _ in partners]
    for partner, customer in zip(partners, registered, strict=True):
        assert (await program.register(partner, customer, at="2026-01-10T09:00:00Z")).status_code == 201
    direct = [Customer.new("Direct") for _ in range(2)]  # new to the service: created by their orders
    program.at("2026-01-20T11:00:00Z")
    events = [
        order_event(c, [line("desktop", 2, 20000, licence_id=f"lic-{uuid.uuid4().hex[:8]}")], placed_at=t(placed))
        for c, placed in zip(
            [*registered, *direct],
            ["2026-01-20T10:00:00Z", "2026-01-20T10:01:00Z", "2026-01-20T10:02:00Z", "2026-01-20T10:03:00Z"],
            strict=True,
        )
    ]
    applied = await _statements_applying(program, monkeypatch, events, "inserts")
    outcomes = applied.outcomes
    inserts = [words[2].strip('"') for words in applied.words if words[:2] == ["INSERT", "INTO"]]
    assert outcomes == [("applied", "credited")] * 2 + [("applied", "no_match")] * 2
    written = {table: inserts.count(table) for table in inserts}
    assert written.pop("partner_balances") == 2  # a partner's first balance row: made by the lock that reads it
    if program.api.connection.dialect.name == "sqlite":
        # SQLite's RETURNING promises no order, so SQLAlchemy inserts one row per statement where the
        # rows' ids are read back: the lines, the entries that move a level, the ORM's rows.
        assert {t: written.pop(t) for t in ("order_lines", "points_entries", "domain_events", "level_changes")} == {
            "order_lines": 4,
            "points_entries": 2,
            "domain_events": 4,  # two registrations converted, two levels changed
            "level_changes": 2,
        }
        written |= {"order_lines": 1, "points_entries": 1, "domain_events": 1, "level_changes": 1}
    assert written == {
        "level_changes": 1,  # R03: both partners' first points make them Silver
        "customers": 1,
        "customer_identifiers": 1,
        "relationships": 1,
        "orders": 1,
        "order_lines": 1,
        "licences": 1,
        "points_entries": 1,
        "money_entries": 1,
        "partner_quarter_money": 1,
        "partner_money_balances": 1,
        "domain_events": 1,
    }, " ".join(inserts)


async def _statements_applying(
    program: Program, monkeypatch: pytest.MonkeyPatch, events: list[dict[str, Any]], tag: str
) -> _Applied:
    """Deliver the events and apply them in one batch, recording every statement sent to the
    database while the batch applies (`webhooks._apply_rows`), on the database itself."""
    from app.domain import webhooks

    sent: list[list[str]] = []
    applying = False

    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        if applying:
            sent.append(statement.split())

    rows_of = webhooks._apply_rows

    async def watched(session: Any, now: Any, rows: Any) -> Any:
        nonlocal applying
        applying = True
        try:
            return await rows_of(session, now, rows)
        finally:
            applying = False

    monkeypatch.setattr(webhooks, "_apply_rows", watched)
    assert program.api.connection is not None  # the sessions' connection: the test's transaction
    engine = program.api.connection.sync_engine
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        _WATCHED["sizes"] = watch_applied_together(monkeypatch)
        outcomes = await _apply(program, 100, events, tag)
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
        monkeypatch.setattr(webhooks, "_apply_rows", rows_of)
    assert [len(events)] == _PASSES  # applied together
    return _Applied(outcomes, sent)


async def _refunds_and_lapses(program: Program, monkeypatch: pytest.MonkeyPatch, n: int) -> list[str]:
    """`n` orders applied, then `n` refunds of them and `n` lapses of their licences in one batch:
    the statements the batch sent, by their first words (their parameters aside)."""
    p = await program.partner()
    c = Customer.new("Refunded")
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    await program.order(c, [line("server-enterprise", 5, 100_000)], placed_at="2026-01-15T10:00:00Z")  # stays Silver
    placed = []
    for k in range(n):
        licence = f"lic-{uuid.uuid4().hex[:10]}"
        made = await program.order(
            c,
            [line("desktop", 2, 20_000, licence_id=licence, term_end=t("2026-03-01T00:00:00Z"))],
            placed_at=f"2026-01-20T10:0{k}:00Z",
        )
        placed.append((made["event"]["data"], licence))
    program.at("2026-06-01T10:00:00Z")
    events: list[dict[str, Any]] = []
    for data, licence in placed:
        line_id = data["lines"][0]["line_id"]
        events.append(refund_event(data["order_id"], [(line_id, 10_000)], at=t("2026-05-01T10:00:00Z")))
        events.append(
            {
                "type": "licence.lapsed",
                "occurred_at": "2026-03-01T00:00:00Z",
                "data": {"licence_id": licence, "lapsed_at": "2026-03-01T00:00:00Z"},
            }
        )
    applied = await _statements_applying(program, monkeypatch, events, f"refunds-{n}")
    assert applied.outcomes == [("applied", "refunded"), ("applied", "lapsed")] * n
    sent = [re.sub(r"sa_savepoint_\d+", "sa_savepoint", " ".join(words[:4])) for words in applied.words]
    if program.api.connection is not None and program.api.connection.dialect.name == "sqlite":
        # SQLite's RETURNING promises no order: SQLAlchemy inserts the rows whose ids it reads back
        # one per statement (`test_a_batch_writes_each_table_in_one_insert`). A run of them is one here.
        sent = [s for k, s in enumerate(sent) if not (k and s == sent[k - 1] and s.startswith("INSERT"))]
    return sent


async def test_r10_r14_a_batch_of_refunds_and_lapses_reads_and_writes_in_as_many_statements_as_one(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refunds and lapses are gathered set-based for the whole batch, and what they make written
    together: three of each cost the statements one of each costs."""
    await _refunds_and_lapses(program, monkeypatch, 1)  # warm: caches of the process filled
    one = await _refunds_and_lapses(program, monkeypatch, 1)
    three = await _refunds_and_lapses(program, monkeypatch, 3)
    assert three == one, "\n".join(difflib.unified_diff(one, three, lineterm=""))
    assert sum(s.startswith("INSERT INTO refunds") for s in three) == 1
