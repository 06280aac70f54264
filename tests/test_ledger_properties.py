"""Ledger properties over random store event sequences, through the HTTP API (R03, R09, R10, R14).

`test_ledger_invariants_hold_over_random_event_sequences`: Hypothesis draws a sequence of steps as
plain data (customer registrations, orders, renewals, lapses, partial and full refunds, duplicate
deliveries under the same or a new webhook id, orders held back so that their refunds arrive
first and park) and replays it through the API. After every step the ledgers of the partner the
step concerned (both partners at the end) are checked: status = sum of entries, points >= 0, the
level follows the points, the points are what a small model expects, and a fully refunded order
nets to zero. `test_final_points_do_not_depend_on_arrival_order` delivers the same orders and
refunds in two arrival orders to two partners and compares their points.

Hypothesis drives synchronous tests; each example runs its scenario on the `harness` fixture's
event loop, on the worker database inside a transaction rolled back at the end of the test, and
inside a savepoint rolled back at the end of the example (the app's sessions join it through
their own savepoints, as in the `api` fixture). The bugs they found are guarded by dedicated tests at the end.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from app.db.session import create_engine, create_session_factory
from app.main import create_app
from tests.conftest import Api, MovableClock, _first_admin_key, make_settings
from tests.program import Customer, Program, line, order_event, refund_event, t

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 20  # per backend; with ~15 steps an example, the file stays well under a minute
MAX_STEPS = 15  # per example: 1-2 registrations, 1-2 orders, then 2-11 steps of any kind
PROPERTY_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[phase for phase in Phase if phase is not Phase.explain],  # explaining traces every line: minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

BASE = t("2026-01-05T09:00:00Z")
STEP = timedelta(hours=12)
WINDOW = timedelta(days=60)  # R07, the seeded terms
POINTS = {  # R01, the seeded terms
    "desktop": 1,
    "server-business": 4,
    "server-enterprise": 5,
    "creator": 1,
    "cloud-business": 4,
    "cloud-enterprise": 5,
}
_uid = itertools.count(1)


def level_for(points: int) -> str:
    """R02: Affiliate 0 · Silver 1-159 · Gold 160-264 · Platinum 265+."""
    if points >= 265:
        return "platinum"
    if points >= 160:
        return "gold"
    return "silver" if points >= 1 else "affiliate"


# --- the app, once per test; each example in a savepoint rolled back ---------------------------------


@dataclass
class Harness:
    """An app on the worker database inside one transaction, with two partners registered.

    Hypothesis calls the test body once per example, synchronously; the body runs its scenario on
    this harness's own event loop (the connection belongs to it), inside a savepoint rolled back at
    the end, so the examples do not see each other and pay for the app and the partners only once.
    """

    loop: asyncio.AbstractEventLoop
    api: Api
    partners: list[tuple[str, str]]
    start: datetime

    def run(self, scenario: Callable[[Program, list[tuple[str, str]]], Awaitable[None]]) -> None:
        self.loop.run_until_complete(self._isolated(scenario))

    async def _isolated(self, scenario: Callable[[Program, list[tuple[str, str]]], Awaitable[None]]) -> None:
        assert self.api.connection is not None
        savepoint = await self.api.connection.begin_nested()
        try:
            self.api.clock.at = self.start
            await scenario(Program(self.api), self.partners)
        finally:
            await savepoint.rollback()


@pytest.fixture
def harness(database_url: str) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()

    async def setup() -> Harness:
        engine = create_engine(database_url)
        stack.push_async_callback(engine.dispose)
        connection = await stack.enter_async_context(engine.connect())
        stack.push_async_callback((await connection.begin()).rollback)
        clock = MovableClock(BASE)
        factory = create_session_factory(connection, join_transaction_mode="create_savepoint")
        app = create_app(make_settings(database_url), clock=clock, session_factory=factory)
        await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)
        client = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        key = await _first_admin_key(factory, clock.now())
        program = Program(Api(client=client, connection=connection, clock=clock, app=app, admin_key=key))
        partners = [await program.partner(_iso(BASE)), await program.partner(_iso(BASE))]
        return Harness(loop, program.api, partners, clock.now())

    try:
        yield loop.run_until_complete(setup())
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


# --- the model ------------------------------------------------------------------------------------


@dataclass
class MCustomer:
    customer: Customer
    partner: int | None  # who registered it
    registered_at: datetime | None
    established: bool = False


@dataclass
class MLine:
    line_id: str
    sku: str
    quantity: int
    paid: int
    kind: str
    licence_id: str | None
    requested: int = 0  # refunds sent, applied or parked
    refunded: int = 0  # refunds applied
    credited: int = 0  # R09 points
    reversed: int = 0  # R14 points


@dataclass
class MRefund:
    event: dict[str, Any]
    lines: list[tuple[MLine, int]]


@dataclass
class MOrder:
    order_id: str
    event: dict[str, Any]
    customer: MCustomer
    buyer: int | None
    placed_at: datetime
    kind: str
    lines: list[MLine]
    term_end: datetime
    delivered: bool = False
    parked: list[MRefund] = field(default_factory=list)
    restored: int = 0  # points a renewal gave back to a lapsed licence

    @property
    def fully_refunded(self) -> bool:
        return all(x.refunded == x.paid for x in self.lines)


@dataclass
class MLicence:
    licence_id: str
    customer: MCustomer
    sku: str
    quantity: int
    term_end: datetime
    partner: int | None
    line: MLine
    currency: str
    status: str = "active"
    lapse_revoked: int | None = None
    standing: int = 0


@dataclass
class Sent:
    kind: str  # order | refund | lapse
    event: dict[str, Any]
    webhook_id: str
    order: MOrder | None = None
    licence: MLicence | None = None


class LedgerWorld:
    """Two partners, their customers and the store events sent so far, with the points they should hold."""

    def __init__(self, program: Program, partners: list[tuple[str, str]]) -> None:
        self.program = program
        self.partners = partners
        self.points = [0 for _ in partners]
        self.customers: list[MCustomer] = []
        self.orders: list[MOrder] = []
        self.held: list[MOrder] = []
        self.licences: list[MLicence] = []
        self.sent: list[Sent] = []
        self.touched: set[int] = set()  # partners whose ledgers the last step may have changed

    @property
    def clock(self) -> MovableClock:
        return self.program.api.clock

    @property
    def now(self) -> datetime:
        return self.clock.now()

    # sending

    async def _send(self, sent: Sent, *, webhook_id: str | None, expect: tuple[int, str]) -> dict[str, Any]:
        customer = sent.order.customer if sent.order else sent.licence.customer if sent.licence else None
        if customer is not None and customer.partner is not None:
            self.touched.add(customer.partner)  # attribution only ever goes to the customer's registrar
        self.clock.advance(minutes=1)
        response = await self.program.send(sent.event, webhook_id=webhook_id or sent.webhook_id)
        receipt = response.json()
        got = (response.status_code, receipt.get("status"))
        assert got == expect, f"{sent.kind} {sent.event['data']}: expected {expect}, got {got}: {receipt}"
        return dict(receipt)

    # steps

    async def register(self, partner: int) -> None:
        customer = Customer.new()
        response = await self.program.register(self.partners[partner], customer)
        assert response.status_code == 201, response.text
        self.customers.append(MCustomer(customer, partner, self.now))

    async def order(
        self,
        customer_ix: int,
        buyer_kind: str,
        lines: list[tuple[str, int, int]],
        term_days: int,
        currency: str,
        hold: bool,
    ) -> None:
        if customer_ix < 0 or not self.customers:
            customer = MCustomer(Customer.new("Walkin"), None, None)
        else:
            customer = self.customers[customer_ix % len(self.customers)]
        registrar = customer.partner if customer.partner is not None else 0
        buyer = {"direct": None, "own": registrar, "other": 1 - registrar}[buyer_kind]
        term_end = self.now + timedelta(days=term_days)
        mlines = [
            MLine(f"l{next(_uid)}", sku, quantity, paid, "new", f"lic{next(_uid)}") for sku, quantity, paid in lines
        ]
        order_id = f"ord{next(_uid)}"
        event = order_event(
            customer.customer,
            [
                line(x.sku, x.quantity, x.paid, line_id=x.line_id, licence_id=x.licence_id, term_end=term_end)
                for x in mlines
            ],
            placed_at=self.now,
            buyer=self.partners[buyer][0] if buyer is not None else None,
            order_id=order_id,
            currency=currency,
        )
        order = MOrder(order_id, event, customer, buyer, self.now, "new", mlines, term_end)
        self.orders.append(order)
        if hold:
            self.held.append(order)
        else:
            await self._deliver(order)

    async def deliver(self, held_ix: int) -> None:
        if self.held:
            await self._deliver(self.held.pop(held_ix % len(self.held)))

    async def renew(self, licence_ix: int, quantity: int, paid: int, term_days: int, buyer_kind: str) -> None:
        # The store does not renew a licence whose purchase was refunded in full.
        candidates = [x for x in self.licences if x.line.requested < x.line.paid]
        if not candidates:
            return
        licence = candidates[licence_ix % len(candidates)]
        if licence.status == "lapsed":
            # Not for fewer licences: the model does not know that case yet (a dedicated test covers it).
            quantity = max(quantity, licence.quantity)
        customer = licence.customer
        registrar = customer.partner if customer.partner is not None else 0
        buyer = {"direct": None, "own": registrar, "other": 1 - registrar}[buyer_kind]
        term_end = max(licence.term_end, self.now) + timedelta(days=term_days)
        renewal = MLine(f"l{next(_uid)}", licence.sku, quantity, paid, "renewal", licence.licence_id)
        order_id = f"ord{next(_uid)}"
        event = order_event(
            customer.customer,
            [
                line(
                    renewal.sku,
                    quantity,
                    paid,
                    kind="renewal",
                    line_id=renewal.line_id,
                    licence_id=licence.licence_id,
                    term_end=term_end,
                )
            ],
            placed_at=self.now,
            buyer=self.partners[buyer][0] if buyer is not None else None,
            order_id=order_id,
            currency=licence.currency,
        )
        order = MOrder(order_id, event, customer, buyer, self.now, "renewal", [renewal], term_end)
        self.orders.append(order)
        await self._deliver(order)

    async def lapse(self, licence_ix: int) -> None:
        if not self.licences:
            return
        licence = self.licences[licence_ix % len(self.licences)]
        lapsed_at = licence.term_end
        if self.now < lapsed_at:
            self.clock.at = lapsed_at  # the store reports the lapse once the term has ended
        event = {
            "type": "licence.lapsed",
            "occurred_at": _iso(lapsed_at),
            "data": {"licence_id": licence.licence_id, "lapsed_at": _iso(lapsed_at)},
        }
        sent = Sent("lapse", event, f"msg{next(_uid)}", licence=licence)
        expect = self._lapse_model(licence, lapsed_at)
        await self._send(sent, webhook_id=None, expect=expect)
        self.sent.append(sent)

    async def refund(self, order_ix: int, line_ix: int | None, permille: int | None) -> None:
        """A refund of one line (a share of what remains, or all of it), or of every line in full."""
        if not self.orders:
            return
        # Not a renewal that restored points: the model does not know that case yet (a dedicated test covers it).
        candidates = [o for o in self.orders if not o.restored]
        if not candidates:
            return
        order = candidates[order_ix % len(candidates)]
        chosen = order.lines if line_ix is None else [order.lines[line_ix % len(order.lines)]]
        parts: list[tuple[MLine, int]] = []
        for x in chosen:
            remaining = x.paid - x.requested
            if remaining > 0:
                parts.append((x, remaining if permille is None else max(1, remaining * permille // 1000)))
        if not parts:
            return
        for x, amount in parts:
            x.requested += amount
        event = refund_event(
            order.order_id, [(x.line_id, amount) for x, amount in parts], at=self.now, refund_id=f"ref{next(_uid)}"
        )
        refund = MRefund(event, parts)
        sent = Sent("refund", event, f"msg{next(_uid)}", order=order)
        if order.delivered:
            self._refund_model(refund)
            await self._send(sent, webhook_id=None, expect=(200, "applied"))
        else:  # reordered: the refund arrives before its order, parks, and applies when the order comes
            order.parked.append(refund)
            receipt = await self._send(sent, webhook_id=None, expect=(202, "parked"))
            assert receipt["reason_code"] == "order_not_received", receipt
        self.sent.append(sent)

    async def duplicate(self, sent_ix: int, same_webhook_id: bool) -> None:
        if not self.sent:
            return
        sent = self.sent[sent_ix % len(self.sent)]
        if same_webhook_id:
            await self._send(sent, webhook_id=sent.webhook_id, expect=(200, "duplicate"))
            return
        if sent.kind == "order":
            expect = (200, "duplicate")
        elif sent.kind == "refund":
            assert sent.order is not None
            expect = (200, "duplicate") if sent.order.delivered else (202, "parked")
        else:
            assert sent.licence is not None
            lapsed_at = t(sent.event["data"]["lapsed_at"])
            expect = self._lapse_model(sent.licence, lapsed_at)
        await self._send(sent, webhook_id=f"msg{next(_uid)}", expect=expect)

    # what the service should do (R07-R10, R14)

    async def _deliver(self, order: MOrder) -> None:
        self._order_model(order)
        sent = Sent("order", order.event, f"msg{next(_uid)}", order=order)
        await self._send(sent, webhook_id=None, expect=(200, "applied"))
        self.sent.append(sent)

    def _credit(self, partner: int, points: int) -> None:
        self.points[partner] += points

    def _order_model(self, order: MOrder) -> None:
        order.delivered = True
        customer = order.customer
        partner: int | None = None
        if customer.partner is not None and order.buyer in (None, customer.partner):
            assert customer.registered_at is not None
            in_window = customer.registered_at < order.placed_at < customer.registered_at + WINDOW
            if customer.established or in_window:
                partner = customer.partner
                customer.established = True
        for x in order.lines:
            if x.kind == "new":
                assert x.licence_id is not None
                licence = MLicence(
                    x.licence_id,
                    customer,
                    x.sku,
                    x.quantity,
                    order.term_end,
                    partner,
                    x,
                    order.event["data"]["currency"],
                )
                self.licences.append(licence)
                if partner is not None:
                    x.credited = licence.standing = x.quantity * POINTS[x.sku]
                    self._credit(partner, x.credited)
            else:
                order.restored += self._renewal_model(x, order.term_end)
        for refund in order.parked:
            self._refund_model(refund)
        order.parked.clear()

    def _licence(self, licence_id: str | None) -> MLicence | None:
        return next((x for x in self.licences if x.licence_id == licence_id), None)

    def _renewal_model(self, renewal: MLine, term_end: datetime) -> int:
        """R10; returns the points restored."""
        licence = self._licence(renewal.licence_id)
        if licence is None:
            return 0
        restored = 0
        if licence.partner is not None:
            if licence.status == "lapsed" and licence.lapse_revoked is not None:
                restored = licence.lapse_revoked  # R10: restores exactly what the lapse revoked
                licence.standing += restored
                self._credit(licence.partner, restored)
            elif renewal.quantity < licence.quantity:  # R10: the licences not renewed lapse
                lost = min(licence.standing, (licence.quantity - renewal.quantity) * POINTS[licence.sku])
                if lost > 0:
                    licence.standing -= lost
                    self._credit(licence.partner, -lost)
        licence.status = "active"
        licence.lapse_revoked = None
        licence.quantity = renewal.quantity
        licence.term_end = max(licence.term_end, term_end)
        return restored

    def _lapse_model(self, licence: MLicence, lapsed_at: datetime) -> tuple[int, str]:
        if licence.status == "lapsed":
            return 200, "duplicate"
        if licence.term_end > lapsed_at:
            return 200, "applied"  # renewed since: no effect
        licence.status = "lapsed"
        if licence.partner is not None and licence.standing > 0:
            licence.lapse_revoked = licence.standing
            self._credit(licence.partner, -licence.standing)
            licence.standing = 0
        return 200, "applied"

    def _refund_model(self, refund: MRefund) -> None:
        for x, amount in refund.lines:
            x.refunded += amount
            if x.kind != "new" or x.credited == 0:
                continue
            licence = self._licence(x.licence_id)
            assert licence is not None and licence.partner is not None
            per_unit = x.credited // x.quantity
            delta = (x.refunded * x.quantity // x.paid) * per_unit - x.reversed  # R14: floor(r x q / p) licences
            delta = min(delta, max(0, licence.standing))  # only what still stands
            if delta > 0:
                x.reversed += delta
                licence.standing -= delta
                self._credit(licence.partner, -delta)

    # the invariants

    async def check(self, partners: set[int] | None = None) -> None:
        """The invariants, for the given partners (all by default)."""
        checked = set(range(len(self.partners))) if partners is None else partners
        points_entries: list[dict[str, Any]] = []
        money_entries: list[dict[str, Any]] = []
        for i in sorted(checked):
            partner = self.partners[i]
            status = await self.program.status(partner)
            points = await self.program.points(partner)
            money = await self.program.money(partner)
            points_entries += points
            money_entries += money
            active = status["active_points"]
            # R03: active points are the sum of the entries; money balances too, per currency.
            assert active == sum(e["points"] for e in points), (active, points)
            sums: dict[str, int] = {}
            for e in money:
                sums[e["currency"]] = sums.get(e["currency"], 0) + e["amount"]
            balances = status["commission_balances"]
            for currency in set(sums) | set(balances):
                assert balances.get(currency, 0) == sums.get(currency, 0), (currency, balances, sums)
            # Points are never negative; the level follows the points (R02).
            assert active >= 0, active
            assert status["level"] == level_for(active), (status["level"], active)
            # The points the model expects (R09, R10, R14).
            assert active == self.points[i], f"partner {i}: {active} points, the model expects {self.points[i]}"
        for order in self.orders:
            if order.customer.partner not in checked or not (order.delivered and order.fully_refunded):
                continue
            # An order and its full refund net to zero: its commission...
            mine = [e for e in money_entries if e["order_id"] == order.order_id]
            assert sum(e["amount"] for e in mine) == 0, (order.order_id, mine)
            # ...and the points of its licences (a lapse in between took what the refund finds gone).
            for x in order.lines:
                if x.kind == "new":
                    theirs = [e for e in points_entries if e["licence_id"] == x.licence_id]
                    assert sum(e["points"] for e in theirs) == 0, (x.licence_id, theirs)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- the steps, as plain data ------------------------------------------------------------------------

_ix = st.integers(0, 7)
_sku = st.sampled_from(sorted(POINTS))
_quantity = st.one_of(st.integers(1, 3), st.integers(1, 60))  # 60 x 5 points: Gold, then Platinum
_paid = st.one_of(st.integers(1, 1000), st.integers(1000, 400_000))
_buyer = st.sampled_from(["direct", "own", "direct", "own", "other"])  # other: a partner it is not the customer of
_lines = st.lists(st.tuples(_sku, _quantity, _paid), min_size=1, max_size=2)
_permille = st.one_of(st.none(), st.integers(1, 999))

STEPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "order": st.tuples(
        st.integers(-1, 7),  # a registered customer, or (-1) one nobody registered
        _buyer,
        _lines,
        st.integers(1, 3),  # term in days
        st.sampled_from(["EUR", "EUR", "USD"]),
        st.sampled_from([False, False, True]),  # held back: delivered later, after refunds of it
    ),
    "refund": st.tuples(_ix, st.one_of(st.none(), _ix), _permille),  # no line: every line in full
    "lapse": st.tuples(_ix),
    "renew": st.tuples(_ix, _quantity, _paid, st.integers(1, 3), _buyer),
    "duplicate": st.tuples(st.integers(0, 30), st.booleans()),  # same webhook id, or same content
    "deliver": st.tuples(_ix),
    "register": st.tuples(st.integers(0, 1)),
}
KINDS = [  # how often each kind of step is drawn (Hypothesis favours the first ones a little)
    *["refund", "order", "lapse", "renew", "duplicate"] * 2,
    "order",
    "refund",
    "deliver",
    "register",
]
steps = st.sampled_from(KINDS).flatmap(lambda kind: STEPS[kind].map(lambda args: (kind, *args)))


def _actions(world: LedgerWorld) -> dict[str, Callable[..., Awaitable[None]]]:
    return {
        "register": world.register,
        "order": world.order,
        "deliver": world.deliver,
        "renew": world.renew,
        "lapse": world.lapse,
        "refund": world.refund,
        "duplicate": world.duplicate,
    }


@PROPERTY_SETTINGS
@given(
    plan=st.tuples(
        st.lists(st.tuples(st.just("register"), st.integers(0, 1)), min_size=1, max_size=2),
        st.lists(STEPS["order"].map(lambda args: ("order", *args)), min_size=1, max_size=2),
        st.lists(steps, min_size=2, max_size=MAX_STEPS - 4),
    )
)
def test_ledger_invariants_hold_over_random_event_sequences(
    harness: Harness, plan: tuple[list[tuple[Any, ...]], ...]
) -> None:
    """After every step: status = sum of entries (points and money), points >= 0, the level follows
    the points, the model's points are the service's, and a fully refunded order nets to zero."""
    note(f"steps: {list(itertools.chain(*plan))!r}")  # readable even where a plugin blanks the arguments

    async def scenario(program: Program, partners: list[tuple[str, str]]) -> None:
        world = LedgerWorld(program, partners)
        actions = _actions(world)
        for step in itertools.chain(*plan):
            world.clock.advance(seconds=STEP.total_seconds())
            world.touched.clear()
            await actions[step[0]](*step[1:])
            await world.check(world.touched)
        for _ in list(world.held):  # whatever was held back arrives in the end
            world.clock.advance(seconds=STEP.total_seconds())
            await world.deliver(0)
        await world.check()
        parked = (
            await program.client.get(
                "/v1/webhook-events?status=parked&reason_code=order_not_received", headers=program.api.admin
            )
        ).json()["items"]
        assert parked == [], "refunds still wait for orders that arrived"

    harness.run(scenario)


# --- arrival order --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrivalPlan:
    orders: list[tuple[int, str, list[tuple[str, int, int]]]]  # customer, buyer, lines
    refunds: list[tuple[int, list[tuple[int, int]]]]  # order, [(line, amount)]
    first: list[int]  # two arrival orders of the events (indices: the orders, then the refunds)
    second: list[int]

    def expected_points(self) -> int:
        refunded: dict[tuple[int, int], int] = {}
        for o, parts in self.refunds:
            for li, amount in parts:
                refunded[o, li] = refunded.get((o, li), 0) + amount
        return sum(
            (quantity - refunded.get((o, li), 0) * quantity // paid) * POINTS[sku]
            for o, (_, _, lines) in enumerate(self.orders)
            for li, (sku, quantity, paid) in enumerate(lines)
        )


@st.composite
def arrival_plans(draw: st.DrawFn) -> ArrivalPlan:
    orders = draw(
        st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["direct", "own"]), _lines), min_size=1, max_size=3)
    )
    requested: dict[tuple[int, int], int] = {}
    refunds: list[tuple[int, list[tuple[int, int]]]] = []
    for o, li, permille in draw(st.lists(st.tuples(_ix, st.one_of(st.none(), _ix), _permille), min_size=1, max_size=3)):
        order = o % len(orders)
        lines = orders[order][2]
        chosen = range(len(lines)) if li is None else [li % len(lines)]
        parts = []
        for index in chosen:
            remaining = lines[index][2] - requested.get((order, index), 0)
            if remaining > 0:
                amount = remaining if permille is None else max(1, remaining * permille // 1000)
                requested[order, index] = requested.get((order, index), 0) + amount
                parts.append((index, amount))
        if parts:
            refunds.append((order, parts))
    events = range(len(orders) + len(refunds))
    return ArrivalPlan(orders, refunds, draw(st.permutations(events)), draw(st.permutations(events)))


@PROPERTY_SETTINGS
@given(plan=arrival_plans())
def test_final_points_do_not_depend_on_arrival_order(harness: Harness, plan: ArrivalPlan) -> None:
    """The same orders and refunds, delivered in two arrival orders to two partners, leave the same
    points (money may differ: R03a prices an order at the level it finds when processed). Refunds
    that arrive before their order park (202) and apply when it comes. Every order is placed inside
    its customer's registration window: one placed before it is covered by a dedicated test below."""
    note(f"{plan!r}")

    async def deliver(program: Program, partner: tuple[str, str], permutation: list[int]) -> None:
        customers = [Customer.new(), Customer.new()]
        program.api.clock.advance(hours=1)
        registered = program.api.clock.now()
        for c in sorted({c for c, _, _ in plan.orders}):
            assert (await program.register(partner, customers[c])).status_code == 201
        order_ids = [f"ord{next(_uid)}" for _ in plan.orders]
        line_ids = [[f"l{next(_uid)}" for _ in lines] for _, _, lines in plan.orders]
        events: list[dict[str, Any]] = []
        for o, (customer, buyer, lines) in enumerate(plan.orders):
            placed_at = registered + timedelta(days=1 + o)
            body = [
                line(sku, quantity, paid, line_id=line_ids[o][li], licence_id=f"lic{next(_uid)}")
                for li, (sku, quantity, paid) in enumerate(lines)
            ]
            events.append(
                order_event(
                    customers[customer],
                    body,
                    placed_at=placed_at,
                    buyer=partner[0] if buyer == "own" else None,
                    order_id=order_ids[o],
                )
            )
        for r, (o, parts) in enumerate(plan.refunds):
            refunded_at = registered + timedelta(days=10 + r)
            events.append(
                refund_event(order_ids[o], [(line_ids[o][li], amount) for li, amount in parts], at=refunded_at)
            )
        program.at(registered + timedelta(days=20))
        arrived: set[str] = set()
        for index in permutation:
            event = events[index]
            program.api.clock.advance(minutes=1)
            response = await program.send(event)
            data = event["data"]
            if event["type"] == "order.paid":
                arrived.add(data["order_id"])
                assert response.status_code == 200, response.text
            else:  # a refund before its order parks, and applies when the order arrives
                assert response.status_code == (200 if data["order_id"] in arrived else 202), response.text

    async def scenario(program: Program, partners: list[tuple[str, str]]) -> None:
        first, second = partners
        await deliver(program, first, plan.first)
        await deliver(program, second, plan.second)
        parked = (await program.client.get("/v1/webhook-events?status=parked", headers=program.api.admin)).json()
        assert parked["items"] == [], parked
        one, two = await program.total_points(first), await program.total_points(second)
        assert one == two == plan.expected_points(), (one, two, plan.expected_points())

    harness.run(scenario)


# --- bugs these properties found, each as its smallest example -------------------------------------
# Each test states what the rules require; they failed on the service before its fixes and guard them
# now. The random tests above still keep away from these cases (orders placed before the
# registration; renewals of a lapsed licence for fewer licences; refunds of a renewal that restored
# points): teaching the model those cases is the next step.


def _entries(points: list[dict[str, Any]]) -> list[tuple[str, int, str | None]]:
    return [(e["rule"], e["points"], e["order_id"]) for e in points]


async def test_order_placed_before_the_registration_earns_nothing_whatever_the_arrival_order(api: Api) -> None:
    program = Program(api)
    in_order, late = await program.partner(), await program.partner()
    customers = [Customer.new(), Customer.new()]
    program.at("2026-01-10T09:00:00Z")
    for partner, customer in zip((in_order, late), customers, strict=True):
        assert (await program.register(partner, customer)).status_code == 201
    early, later = [], []
    for customer in customers:  # the same two orders for each customer: one placed before the registration
        early.append(order_event(customer, [line("desktop", 1, 48000)], placed_at=t("2026-01-08T09:00:00Z")))
        later.append(order_event(customer, [line("server-business", 1, 48000)], placed_at=t("2026-01-20T09:00:00Z")))
    program.at("2026-01-25T09:00:00Z")
    for event in [early[0], later[0], later[1], early[1]]:  # the second customer's early order arrives last
        program.api.clock.advance(minutes=1)
        assert (await program.send(event)).status_code == 200
    in_order_points, late_points = await program.points(in_order), await program.points(late)
    # R07: an order placed before the registration earns nothing, whenever it arrives.
    late_early = [e for e in late_points if e["order_id"] == early[1]["data"]["order_id"]]
    assert late_early == [], _entries(late_points)
    # In placed order nothing qualifies (E3: the customer had bought before its registration). When
    # the earlier order arrives after the later one was credited, that credit stands: the rules do
    # not say that a late order undoes an established relationship (a known gap, in the notes).
    assert sum(e["points"] for e in in_order_points) == 0
    assert sum(e["points"] for e in late_points) == 4


async def test_full_refund_of_a_renewal_takes_back_the_points_it_restored(api: Api) -> None:
    program = Program(api)
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    await program.order(
        c,
        [line("server-business", 3, 300000, licence_id="lic-a", term_end=t("2026-03-01T00:00:00Z"))],
        placed_at="2026-01-20T09:00:00Z",
    )
    await program.lapse("lic-a", at="2026-03-01T00:00:00Z")
    renewal = await program.order(
        c,
        [
            line(
                "server-business",
                3,
                300000,
                kind="renewal",
                line_id="renewal",
                licence_id="lic-a",
                term_end=t("2027-03-05T00:00:00Z"),
            )
        ],
        placed_at="2026-03-05T00:00:00Z",
    )
    renewal_id = renewal["event"]["data"]["order_id"]
    await program.refund(renewal_id, [("renewal", 300000)], at="2026-03-10T00:00:00Z")
    money = [e["amount"] for e in await program.money(p) if e["order_id"] == renewal_id]
    assert sum(money) == 0  # its commission is reversed...
    points = await program.points(p)
    # ...but the 12 points it restored stay: [R09 +12, R10 -12 (lapse), R10 +12 (renewal)], nothing after.
    assert sum(e["points"] for e in points if e["order_id"] == renewal_id) == 0, _entries(points)
    assert (await program.status(p))["active_points"] == 0


async def test_renewal_of_a_lapsed_licence_for_fewer_licences_restores_only_those(api: Api) -> None:
    program = Program(api)
    p = await program.partner()
    c = Customer.new()
    await program.register(p, c, at="2026-01-10T09:00:00Z")
    await program.order(
        c,
        [line("server-business", 3, 300000, licence_id="lic-b", term_end=t("2026-03-01T00:00:00Z"))],
        placed_at="2026-01-20T09:00:00Z",
    )
    await program.lapse("lic-b", at="2026-03-01T00:00:00Z")
    await program.order(
        c,
        [
            line(
                "server-business",
                1,
                100000,
                kind="renewal",
                licence_id="lic-b",
                term_end=t("2027-03-05T00:00:00Z"),
            )
        ],
        placed_at="2026-03-05T00:00:00Z",
    )
    # One Server Business licence lives on: 4 points, not the 12 of the three that were sold.
    assert (await program.status(p))["active_points"] == 4, _entries(await program.points(p))
