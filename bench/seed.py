"""Seed a benchmark database with COPY: partners with keys, customers, orders and ledgers.

Every partner looks like one that has been in the program for most of a year: active, bound by the
agreement, one API key, `customers_per_partner` customers each in an established referral
relationship (from a converted registration), and `orders_per_partner` two-line orders whose new
licences earned points (R09) and referral commission (R11). Balances, money balances and (when the
table exists) quarterly accruals are the sums of the seeded entries, as the service keeps them.
Customer 0 of each partner is the one the webhook load orders for.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]

LINES_PER_ORDER = 2
COUNTRIES = ("FR", "DE", "GB", "ES", "IT", "NL", "BE", "US", "CA", "SE")
UNIT_PRICES = {  # minor units per licence and year; any SKU not named costs 50,000
    "desktop": 48000,
    "creator": 36000,
    "server-business": 250000,
    "server-enterprise": 420000,
    "cloud-business": 240000,
    "cloud-enterprise": 400000,
}
SERVICES = ("reporting", "training", "implementation", "licensing", "support", "consulting")
DIRECTORY_COLUMNS = ("region", "listed", "description", "services", "regions_served")
"""Directory profile columns (R18, R20), filled when the schema has them."""
CHUNK_PARTNERS = 500
ID_FLOORS = {
    # After seeding, the id sequences of the tables a webhook writes start at distinct, large values,
    # so an id the service generated can be told apart from every other number when its statements are
    # captured (bench/capture.py). Gaps in a sequence carry no meaning.
    "webhook_events": 1_000_000_000,
    "order_lines": 2_000_000_000,
    "points_entries": 3_000_000_000,
    "money_entries": 4_000_000_000,
    "level_changes": 5_000_000_000,
    "discount_mismatches": 6_000_000_000,
    "customer_identifiers": 7_000_000_000,
    "audit_events": 8_000_000_000,
}


@dataclass(frozen=True)
class Scale:
    name: str
    partners: int
    customers_per_partner: int
    orders_per_partner: int

    @property
    def customers(self) -> int:
        return self.partners * self.customers_per_partner

    @property
    def orders(self) -> int:
        return self.partners * self.orders_per_partner

    @property
    def ledger_entries(self) -> int:
        return self.orders * LINES_PER_ORDER * 2  # one points and one money entry per line

    def describe(self) -> str:
        return (
            f"{self.partners:,} partners, {self.customers:,} customers, {self.orders:,} orders, "
            f"{self.ledger_entries:,} ledger entries"
        )


SCALES = {
    "smoke": Scale("smoke", partners=20, customers_per_partner=5, orders_per_partner=5),
    "small": Scale("small", partners=200, customers_per_partner=10, orders_per_partner=25),
    "large": Scale("large", partners=10_000, customers_per_partner=10, orders_per_partner=25),
}


@dataclass(frozen=True)
class Target:
    """A seeded partner, with what the load needs to act for it and its customer 0."""

    index: int
    partner_id: uuid.UUID
    key: str
    key_hash: str
    customer_id: uuid.UUID
    customer_company: str
    customer_country: str
    customer_domain: str
    store_customer_id: str


@dataclass(frozen=True)
class Program:
    """What the terms in force say, read from the database (never from the service's code)."""

    terms_version: int
    points_per_sku: dict[str, int]
    referral_rate_bp: int
    levels: list[tuple[str, int]]

    def level_for(self, points: int) -> str:
        level = self.levels[0][0]
        for name, minimum in self.levels:
            if points >= minimum:
                level = name
        return level


@dataclass
class SeedResult:
    targets: list[Target]
    program: Program
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def half_up(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if remainder * 2 >= denominator else 0)


def commission(paid: int, rate_bp: int) -> int:
    return half_up(paid * rate_bp, 10_000)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def quarter_of(moment: datetime) -> str:
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"


class Progress:
    """A one-line text progress bar on standard error (a line per 10 % when it is not a terminal)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, max(1, total), 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self.tty = sys.stderr.isatty()

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.tty and now - self._last_draw < 0.2 and self.done < self.total:
            return
        self._last_draw = now
        share = min(1.0, self.done / self.total)
        bar = "#" * int(share * 30)
        text = (
            f"{self.label} [{bar:<30}] {self.done:>10,}/{self.total:,} rows {share * 100:5.1f} % "
            f"{now - self.started:6.1f} s"
        )
        if self.tty:
            print("\r" + text, end="", file=sys.stderr, flush=True)
        elif int(share * 10) > self._last_decile:
            self._last_decile = int(share * 10)
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        self.total = max(1, self.done)
        self._last_draw = 0.0
        self._last_decile = -1
        if self.done:
            self.add(0)
        if self.tty:
            print(file=sys.stderr, flush=True)


async def read_program(conn: asyncpg.Connection) -> Program:
    row = await conn.fetchrow(
        "SELECT version, terms FROM program_terms_versions WHERE effective_from <= now() "
        "ORDER BY effective_from DESC, version DESC LIMIT 1"
    )
    if row is None:
        raise RuntimeError("the migrated database holds no program terms in force")
    terms = json.loads(row["terms"]) if isinstance(row["terms"], str) else row["terms"]
    return Program(
        terms_version=int(row["version"]),
        points_per_sku={str(k): int(v) for k, v in terms["points_per_sku"].items()},
        referral_rate_bp=int(terms["referral_rate_bp"]),
        levels=[(str(t["level"]), int(t["min_points"])) for t in terms["levels"]],
    )


async def _table_exists(conn: asyncpg.Connection, table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"public.{table}"))


@dataclass
class _Chunk:
    """Rows of one batch of partners, per table, in the order the foreign keys need."""

    tables: dict[str, list[tuple[Any, ...]]]

    def rows(self) -> int:
        return sum(len(v) for v in self.tables.values())


COLUMNS: dict[str, tuple[str, ...]] = {
    "partners": (
        "id",
        "company",
        "country",
        "contact_name",
        "contact_email",
        "website",
        "languages",
        "status",
        "created_at",
        "updated_at",
    ),
    "partner_status_changes": ("partner_id", "from_status", "to_status", "effective_at", "reason", "actor"),
    "agreement_acceptances": ("partner_id", "agreement_version_id", "accepted_at"),
    "api_keys": (
        "id",
        "kind",
        "partner_id",
        "name",
        "prefix",
        "key_hash",
        "scopes",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    ),
    "customers": ("id", "company", "country", "created_at", "first_purchase_at"),
    "customer_identifiers": ("customer_id", "kind", "value"),
    "registrations": (
        "id",
        "partner_id",
        "customer_id",
        "state",
        "registered_at",
        "expires_at",
        "terms_version",
        "company",
        "country",
        "contact_name",
        "contact_email",
        "domain",
        "store_customer_id",
        "ended_at",
        "converted_order_id",
    ),
    "relationships": ("id", "partner_id", "customer_id", "mode", "first_order_at", "established_by_order_id"),
    "orders": (
        "order_id",
        "placed_at",
        "currency",
        "customer_id",
        "content_hash",
        "terms_version",
        "partner_id",
        "mode",
        "level",
        "outcome",
        "recorded_at",
    ),
    "order_lines": (
        "id",
        "order_id",
        "line_id",
        "sku",
        "quantity",
        "kind",
        "licence_id",
        "term_end",
        "list_amount",
        "discount_amount",
        "tax_amount",
        "paid_amount",
        "refunded_amount",
    ),
    "licences": (
        "licence_id",
        "partner_id",
        "customer_id",
        "sku",
        "quantity",
        "points_per_unit",
        "term_end",
        "status",
        "order_line_id",
    ),
    "points_entries": (
        "partner_id",
        "points",
        "effective_at",
        "recorded_at",
        "rule",
        "explanation",
        "order_id",
        "order_line_id",
        "licence_id",
        "terms_version",
    ),
    "money_entries": (
        "partner_id",
        "currency",
        "amount",
        "effective_at",
        "recorded_at",
        "rule",
        "explanation",
        "order_id",
        "order_line_id",
        "rate_bp",
        "base_amount",
        "terms_version",
    ),
    "partner_balances": ("partner_id", "points", "level", "updated_at"),
    "partner_money_balances": ("partner_id", "currency", "amount"),
    "partner_quarter_money": ("partner_id", "quarter", "currency", "accrued"),
}


def _spread(*numbers: int) -> float:
    """A deterministic number in [0, 1) from integers (no random module: reruns seed alike)."""
    digest = hashlib.blake2b(repr(numbers).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class _Builder:
    def __init__(
        self,
        scale: Scale,
        program: Program,
        agreement_id: int,
        start: datetime,
        now: datetime,
        *,
        quarters: bool,
        directory: bool,
    ) -> None:
        self.scale, self.program, self.agreement_id = scale, program, agreement_id
        self.start, self.now, self.quarters, self.directory = start, now, quarters, directory
        self.skus = sorted(program.points_per_sku)
        self.next_line_id = 1
        self.targets: list[Target] = []

    def chunk(self, first: int, last: int) -> _Chunk:
        t: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
        if not self.quarters:
            del t["partner_quarter_money"]
        program, tv = self.program, self.program.terms_version
        rate = program.referral_rate_bp
        history_end = self.now - timedelta(days=2)
        for i in range(first, last):
            pid = uuid.uuid4()
            created = self.start + timedelta(minutes=(i * 37) % (10 * 24 * 60))
            country = COUNTRIES[i % len(COUNTRIES)]
            partner: tuple[Any, ...] = (
                pid,
                f"Bench Partner {i} GmbH",
                country,
                f"Contact {i}",
                f"contact{i}@partner{i}.bench.example",
                f"https://partner{i}.bench.example",
                json.dumps(["en", "fr"] if i % 3 else ["de", "en"]),
                "active",
                created,
                created,
            )
            if self.directory:
                services = [SERVICES[(i + n) % len(SERVICES)] for n in range(1 + i % 3)]
                partner += (
                    f"Region {i % 7}",
                    i % 20 != 0,  # one partner in twenty opted out of the directory
                    f"Qalyptus partner {i}: reporting for {country} companies since {created.year}.",
                    json.dumps(services),
                    json.dumps([f"Region {(i + n) % 7}" for n in range(1 + i % 2)]),
                )
            t["partners"].append(partner)
            t["partner_status_changes"].append(
                (pid, None, "active", created, "registered; approved automatically", "public")
            )
            t["agreement_acceptances"].append((pid, self.agreement_id, created))
            key = "qpp_" + secrets.token_urlsafe(32)
            t["api_keys"].append(
                (
                    uuid.uuid4(),
                    "partner",
                    pid,
                    "default",
                    key[:12],
                    key_hash(key),
                    json.dumps(["partner"]),
                    created,
                    "public",
                    None,
                    None,
                )
            )
            # orders: spread between a day after joining and two days ago, customer k % C
            span = (history_end - created - timedelta(days=1)).total_seconds()
            placed_by_customer: dict[int, list[tuple[datetime, int]]] = {}
            for k in range(self.scale.orders_per_partner):
                placed = created + timedelta(days=1, seconds=span * _spread(i, k))
                placed_by_customer.setdefault(k % self.scale.customers_per_partner, []).append((placed, k))
            points_total = 0
            money_total = 0
            money_by_quarter: dict[str, int] = {}
            for j in range(self.scale.customers_per_partner):
                cid = uuid.uuid4()
                company = f"Customer {i}-{j} SA"
                domain = f"c{i}x{j}.bench.example"
                store_id = f"cus-bench-{i}x{j}"
                orders = sorted(placed_by_customer.get(j, []))
                first_at = orders[0][0] if orders else created + timedelta(days=1)
                first_order = f"hist-{i}-{orders[0][1]}" if orders else f"hist-{i}-none-{j}"
                registered = first_at - timedelta(days=2)
                t["customers"].append((cid, company, country, registered, first_at))
                t["customer_identifiers"].append((cid, "domain", domain))
                t["customer_identifiers"].append((cid, "store_id", store_id))
                t["registrations"].append(
                    (
                        uuid.uuid4(),
                        pid,
                        cid,
                        "converted",
                        registered,
                        registered + timedelta(days=60),
                        tv,
                        company,
                        country,
                        "Buyer",
                        f"buyer@{domain}",
                        domain,
                        store_id,
                        first_at,
                        first_order,
                    )
                )
                t["relationships"].append((uuid.uuid4(), pid, cid, "referral", first_at, first_order))
                if j == 0:
                    self.targets.append(Target(i, pid, key, key_hash(key), cid, company, country, domain, store_id))
                for placed, k in orders:
                    order_id = f"hist-{i}-{k}"
                    recorded = placed + timedelta(seconds=5)
                    t["orders"].append(
                        (
                            order_id,
                            placed,
                            "EUR",
                            cid,
                            hashlib.sha256(order_id.encode()).hexdigest(),
                            tv,
                            pid,
                            "referral",
                            program.level_for(points_total),
                            "credited",
                            recorded,
                        )
                    )
                    for n in range(LINES_PER_ORDER):
                        sku = self.skus[(i + k + n) % len(self.skus)]
                        quantity = 1 + (i + k + n) % 3
                        paid = UNIT_PRICES.get(sku, 50000) * quantity
                        per_unit = program.points_per_sku[sku]
                        line_id = self.next_line_id
                        self.next_line_id += 1
                        licence = f"{order_id}-l{n + 1}"
                        term_end = placed + timedelta(days=365)
                        t["order_lines"].append(
                            (
                                line_id,
                                order_id,
                                f"l{n + 1}",
                                sku,
                                quantity,
                                "new",
                                licence,
                                term_end,
                                paid,
                                0,
                                0,
                                paid,
                                0,
                            )
                        )
                        t["licences"].append((licence, pid, cid, sku, quantity, per_unit, term_end, "active", line_id))
                        points = quantity * per_unit
                        if points:
                            t["points_entries"].append(
                                (
                                    pid,
                                    points,
                                    placed,
                                    recorded,
                                    "R09",
                                    f"{quantity} x {sku} new licence(s) at {per_unit} point(s) each",
                                    order_id,
                                    line_id,
                                    licence,
                                    tv,
                                )
                            )
                            points_total += points
                        amount = commission(paid, rate)
                        if amount:
                            t["money_entries"].append(
                                (
                                    pid,
                                    "EUR",
                                    amount,
                                    placed,
                                    recorded,
                                    "R11",
                                    f"referral commission {rate / 100:g} % of {paid} paid for {quantity} x {sku}",
                                    order_id,
                                    line_id,
                                    rate,
                                    paid,
                                    tv,
                                )
                            )
                            money_total += amount
                            quarter = quarter_of(placed)
                            money_by_quarter[quarter] = money_by_quarter.get(quarter, 0) + amount
            t["partner_balances"].append((pid, points_total, program.level_for(points_total), self.now))
            t["partner_money_balances"].append((pid, "EUR", money_total))
            if self.quarters:
                for quarter, accrued in sorted(money_by_quarter.items()):
                    t["partner_quarter_money"].append((pid, quarter, "EUR", accrued))
        return _Chunk(t)


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for first in range(0, total, size):
        yield first, min(total, first + size)


async def seed(conn: asyncpg.Connection, scale: Scale, *, fast: bool = True) -> SeedResult:
    """Fill a freshly migrated database. `fast` skips foreign-key triggers while copying (the rows
    are consistent by construction; every key still has its index and unique constraint)."""
    started = time.monotonic()
    program = await read_program(conn)
    agreement = await conn.fetchrow(
        "SELECT id, published_at FROM agreement_versions WHERE published_at <= now() "
        "ORDER BY published_at DESC, id DESC LIMIT 1"
    )
    if agreement is None:
        raise RuntimeError("the migrated database holds no published partner agreement")
    now = datetime.now(UTC)
    start = max(agreement["published_at"] + timedelta(hours=1), now - timedelta(days=330))
    if start > now - timedelta(days=20):
        raise RuntimeError(f"the agreement was published too recently ({agreement['published_at']}) to seed history")
    quarters = await _table_exists(conn, "partner_quarter_money")
    partner_columns = {
        r["column_name"]
        for r in await conn.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 'partners'")
    }
    directory = set(DIRECTORY_COLUMNS) <= partner_columns
    columns = dict(COLUMNS)
    if directory:
        columns["partners"] = (*COLUMNS["partners"], *DIRECTORY_COLUMNS)
    builder = _Builder(scale, program, int(agreement["id"]), start, now, quarters=quarters, directory=directory)
    per_partner = 9 + 6 * scale.customers_per_partner + scale.orders_per_partner * (1 + 4 * LINES_PER_ORDER) + 2
    progress = Progress(f"seeding {scale.name}", scale.partners * per_partner)
    counts: dict[str, int] = {}
    if fast:
        await conn.execute("SET session_replication_role = replica")
    try:
        for first, last in _chunks(scale.partners, CHUNK_PARTNERS):
            chunk = builder.chunk(first, last)
            async with conn.transaction():
                for table, rows in chunk.tables.items():
                    if rows:
                        await conn.copy_records_to_table(table, records=rows, columns=list(columns[table]))
                        counts[table] = counts.get(table, 0) + len(rows)
                        progress.add(len(rows))
    finally:
        if fast:
            await conn.execute("SET session_replication_role = DEFAULT")
        progress.close()
    licence_columns = {
        r["column_name"]
        for r in await conn.fetch("SELECT column_name FROM information_schema.columns WHERE table_name = 'licences'")
    }
    if "standing_points" in licence_columns:  # kept by triggers, which a fast COPY runs without
        await conn.execute(
            "UPDATE licences l SET standing_points = s.points FROM (SELECT licence_id, SUM(points) AS points "
            "FROM points_entries WHERE licence_id IS NOT NULL GROUP BY licence_id) s WHERE s.licence_id = l.licence_id"
        )
    if "level_rank" in partner_columns:  # the directory's stored order, as the service keeps it
        await conn.execute(
            "UPDATE partners p SET level_rank = CASE b.level WHEN 'platinum' THEN 0 WHEN 'gold' THEN 1 "
            "WHEN 'silver' THEN 2 ELSE 3 END FROM partner_balances b WHERE b.partner_id = p.id"
        )
    if "search_text" in partner_columns:  # the directory's search columns (app.db.tables.directory_text)
        await conn.execute(
            "UPDATE partners SET "
            "search_text = lower(concat_ws(E'\\n', company, description, "
            "(SELECT string_agg(x, E'\\n') FROM json_array_elements_text(services) x))), "
            "region_text = lower(concat_ws(E'\\n', region, "
            "(SELECT string_agg(x, E'\\n') FROM json_array_elements_text(regions_served) x)))"
        )
    await conn.execute("SELECT setval(pg_get_serial_sequence('order_lines', 'id'), $1)", builder.next_line_id)
    for table, floor in ID_FLOORS.items():
        if not await _table_exists(conn, table):
            continue
        sequence = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
        if sequence:
            largest = await conn.fetchval(f"SELECT COALESCE(max(id), 0) FROM {table}")  # noqa: S608 - names above
            await conn.execute("SELECT setval($1, $2)", sequence, max(floor, int(largest) + 1))
    print(f"vacuum analyze ({time.monotonic() - started:.1f} s so far) ...", file=sys.stderr, flush=True)
    await conn.execute("VACUUM (ANALYZE)")
    return SeedResult(builder.targets, program, counts, time.monotonic() - started)


def expected_per_order(program: Program, lines: Sequence[tuple[str, int, int, int]]) -> tuple[int, int]:
    """(points, commission) one webhook order of `lines` (sku, quantity, net, tax) should earn for a
    partner whose customer is in an established referral relationship within its window (R09, R11):
    commission on the amount net of tax (R23)."""
    points = sum(quantity * program.points_per_sku[sku] for sku, quantity, _net, _tax in lines)
    money = sum(commission(net, program.referral_rate_bp) for _sku, _quantity, net, _tax in lines)
    return points, money


# --- payouts: payee details, the self-billing agreement, closed quarters and their statements ---------

PAYEE_HOLD_DAYS = 7
"""The hold a first change of bank details sets (PARTNERS_PAYOUT_HOLD_DAYS' default); long past here."""
SELF_BILLING_VERSION = "bench-2026"
CLOSED_BY = "admin:bench"


@dataclass(frozen=True)
class _PayeeKind:
    country: str
    vat_registered: bool
    address_line1: str
    postal_code: str
    city: str
    bic: str
    treatment: str
    """The VAT treatment its invoices get from a French vendor (app.domain.rules.invoices)."""


PAYEE_KINDS = (
    # partner i gets kind i % 4: the four VAT treatments of a French vendor's self-billed invoices
    _PayeeKind("FR", True, "12 rue de la Paix", "75002", "Paris", "PSSTFRPP", "domestic"),
    _PayeeKind("DE", True, "Hohe Straße 1", "50667", "Köln", "COBADEFFXXX", "reverse_charge"),
    _PayeeKind("GB", False, "10 Downing Street", "SW1A 2AA", "London", "NWBKGB2L", "outside_eu"),
    _PayeeKind("DE", False, "Königsallee 2", "40212", "Düsseldorf", "COBADEFFXXX", "not_registered"),
)


@dataclass
class PayoutSeedResult:
    quarters: list[str]
    """The quarters closed, oldest first: every statement but each partner's newest is paid."""
    approved: int
    """Approved EUR statements (one per partner with commission): what a payout run takes."""
    approved_partners: int
    approved_amount: int
    """Their payable amounts summed, minor units (the invoices' net)."""
    treatments: dict[str, int]
    """Partners with an approved statement, by the VAT treatment their payee details give."""
    rows: dict[str, int] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    """Seconds per seeding step."""

    @property
    def seconds(self) -> float:
        return sum(self.steps.values())


def _iban(kind: _PayeeKind, index: int) -> str:
    """A valid IBAN of the kind's bank (schwifty computes the check digits and, for France, the RIB key;
    a German account number that fails its bank's own check-digit method is skipped)."""
    import warnings

    from schwifty import IBAN
    from schwifty.exceptions import NationalChecksumNotVerified

    for attempt in range(10):
        if kind.country == "FR":
            candidate = IBAN.generate("FR", bank_code="2004101005", account_code=f"{index * 10 + attempt:011d}")
        elif kind.country == "DE":  # this bank's account numbers carry their check digit third from the end
            candidate = IBAN.generate("DE", bank_code="37040044", account_code=f"{1_000_000 + index:07d}{attempt}00")
        else:
            candidate = IBAN.generate("GB", bank_code="NWBK601613", account_code=f"{index * 10 + attempt:08d}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NationalChecksumNotVerified)
                return IBAN(str(candidate), validate_bban=True).compact
        except ValueError:
            continue
    raise RuntimeError(f"no valid {kind.country} IBAN found for partner {index}")


def _vat_id(kind: _PayeeKind, index: int) -> str | None:
    """A VAT id that passes its country's check digits (python-stdnum's rules), for registered payees."""
    if not kind.vat_registered:
        return None
    from stdnum import luhn
    from stdnum.iso7064 import mod_11_10

    if kind.country == "FR":
        siren = f"{30_000_000 + index:08d}"
        siren += luhn.calc_check_digit(siren)
        return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"
    digits = f"{10_000_000 + index:08d}"
    return f"DE{digits}{mod_11_10.calc_check_digit(digits)}"


def _quarter_start(year: int, number: int, zone: Any) -> datetime:
    return datetime(year, 3 * number - 2, 1, tzinfo=zone).astimezone(UTC)


def _next_quarter(year: int, number: int) -> tuple[int, int]:
    return (year + 1, 1) if number == 4 else (year, number + 1)


async def seed_payouts(
    conn: asyncpg.Connection, targets: Sequence[Target], secrets_key: str, *, now: datetime | None = None
) -> PayoutSeedResult:
    """What a payout run needs, for every seeded partner: payee details (IBAN and BIC sealed with
    `secrets_key`, the service's PARTNERS_SECRETS_KEY, as `app.domain.sealed` seals them; the hold
    their first recording set long past), the self-billing agreement published and accepted, and every
    quarter over since the first commission closed as the service closes one (R16: each partner's
    entries not on hold and in no statement yet, one statement per partner and currency, a line per
    entry), in order. Each partner's newest statement is approved (what a run pays), the older ones
    paid by a bank reference. Not seeded: the closes' audit records and statement events."""
    from zoneinfo import ZoneInfo

    from cryptography.fernet import Fernet

    now = now or datetime.now(UTC)
    box = Fernet(secrets_key.split(",")[0].strip().encode())
    steps: dict[str, float] = {}
    counts: dict[str, int] = {}
    row = await conn.fetchrow(
        "SELECT terms FROM program_terms_versions WHERE effective_from <= now() "
        "ORDER BY effective_from DESC, version DESC LIMIT 1"
    )
    terms = json.loads(row["terms"]) if isinstance(row["terms"], str) else row["terms"]
    hold = timedelta(days=int(terms.get("hold_days", 0)))
    zone_name = str(terms.get("time_zone", "UTC"))
    zone = ZoneInfo(zone_name)

    started = time.monotonic()
    partners = {
        r["id"]: (r["company"], r["created_at"])
        for r in await conn.fetch("SELECT id, company, created_at FROM partners")
    }
    payees: list[tuple[Any, ...]] = []
    treatment_of: dict[uuid.UUID, str] = {}
    for target in targets:
        kind = PAYEE_KINDS[target.index % len(PAYEE_KINDS)]
        company, created = partners[target.partner_id]
        recorded = created + timedelta(hours=1)
        iban = _iban(kind, target.index)
        payees.append(
            (
                target.partner_id,
                company,
                kind.address_line1,
                kind.postal_code,
                kind.city,
                kind.country,
                box.encrypt(iban.encode()).decode(),
                box.encrypt(kind.bic.encode()).decode(),
                f"{iban[:2]}…{iban[-4:]}",
                _vat_id(kind, target.index),
                kind.vat_registered,
                recorded,
                f"partner:{target.partner_id}",
                recorded,
                recorded + timedelta(days=PAYEE_HOLD_DAYS),
            )
        )
        treatment_of[target.partner_id] = kind.treatment
    async with conn.transaction():
        await conn.copy_records_to_table(
            "payee_details",
            records=payees,
            columns=[
                "partner_id",
                "legal_name",
                "address_line1",
                "postal_code",
                "city",
                "country",
                "iban",
                "bic",
                "iban_masked",
                "vat_id",
                "vat_registered",
                "recorded_at",
                "recorded_by",
                "bank_changed_at",
                "payouts_held_until",
            ],
        )
    counts["payee_details"] = len(payees)
    steps["payee_details_s"] = time.monotonic() - started

    started = time.monotonic()
    first_joined = min(created for _, created in partners.values())
    async with conn.transaction():
        version_id = await conn.fetchval(
            "INSERT INTO self_billing_versions (version, title, url, published_at, published_by) "
            "VALUES ($1, $2, NULL, $3, $4) RETURNING id",
            SELF_BILLING_VERSION,
            "Self-billing agreement (benchmark)",
            first_joined,
            CLOSED_BY,
        )
        await conn.copy_records_to_table(
            "self_billing_acceptances",
            records=[
                (t.partner_id, version_id, partners[t.partner_id][1] + timedelta(hours=2), f"partner:{t.partner_id}")
                for t in targets
            ],
            columns=["partner_id", "version_id", "accepted_at", "accepted_by"],
        )
    counts["self_billing_acceptances"] = len(targets)
    steps["self_billing_s"] = time.monotonic() - started

    first = await conn.fetchval("SELECT min(effective_at) FROM money_entries")
    quarters: list[str] = []
    if first is not None:
        local = first.astimezone(zone)
        year, number = local.year, (local.month - 1) // 3 + 1
        while (cutoff := _quarter_start(*_next_quarter(year, number), zone)) <= now:
            quarter = f"{year}-Q{number}"
            following = _next_quarter(year, number)
            payout = datetime(following[0], 3 * following[1] - 2, 25, tzinfo=UTC)
            closed_at = min(cutoff + timedelta(days=5), now - timedelta(hours=1))
            started = time.monotonic()
            made = await _close_quarter(conn, quarter, cutoff, hold, zone_name, closed_at, payout)
            steps[f"close_{quarter}_s"] = time.monotonic() - started
            counts["statements"] = counts.get("statements", 0) + made
            print(f"closed {quarter}: {made:,} statements in {steps[f'close_{quarter}_s']:.1f} s", file=sys.stderr)
            quarters.append(quarter)
            year, number = following

    started = time.monotonic()
    async with conn.transaction():
        # Each partner's older statements were paid (manually, by the bank reference, as
        # `POST /v1/statements/{id}/mark-paid` records it): approved -> paid, a move the trigger allows.
        paid = await conn.execute(
            "UPDATE statements s SET status = 'paid', paid_at = s.payout_date, "
            "payment_reference = 'BANK-' || s.quarter || '-' || left(s.id::text, 8) "
            "WHERE s.status = 'approved' AND EXISTS (SELECT 1 FROM statements n WHERE n.partner_id = s.partner_id "
            "AND n.currency = s.currency AND n.quarter > s.quarter)"
        )
    counts["statements_paid"] = int(paid.split()[-1])
    await conn.execute("ANALYZE payee_details, self_billing_acceptances, statements, statement_lines, quarter_closes")
    steps["statements_paid_s"] = time.monotonic() - started
    approved = await conn.fetch(
        "SELECT partner_id, payable_amount FROM statements WHERE status = 'approved' AND currency = 'EUR'"
    )
    counts["statement_lines"] = int(await conn.fetchval("SELECT count(*) FROM statement_lines"))
    treatments: dict[str, int] = {}
    for r in approved:
        name = treatment_of.get(r["partner_id"], "none")
        treatments[name] = treatments.get(name, 0) + 1
    return PayoutSeedResult(
        quarters=quarters,
        approved=len(approved),
        approved_partners=len({r["partner_id"] for r in approved}),
        approved_amount=sum(int(r["payable_amount"]) for r in approved),
        treatments=dict(sorted(treatments.items())),
        rows=counts,
        steps=steps,
    )


async def _close_quarter(
    conn: asyncpg.Connection,
    quarter: str,
    cutoff: datetime,
    hold: timedelta,
    zone: str,
    closed_at: datetime,
    payout: datetime,
) -> int:
    """One quarter closed as `app.domain.statements.close_quarter` closes it, in set-based SQL and one
    transaction: the close claimed while it makes its statements (-1), then counted (the database's
    triggers allow exactly that). Statements are approved a day after the close."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO quarter_closes (quarter, time_zone, cutoff, closed_at, closed_by, statements) "
            "VALUES ($1, $2, $3, $4, $5, -1)",
            quarter,
            zone,
            cutoff,
            closed_at,
            CLOSED_BY,
        )
        await conn.execute(
            "CREATE TEMP TABLE bench_taken ON COMMIT DROP AS "
            "SELECT e.id, e.partner_id, e.currency, e.amount, e.effective_at, e.recorded_at, "
            "to_char(e.effective_at AT TIME ZONE $3, 'YYYY-\"Q\"Q') AS own FROM money_entries e "
            "WHERE e.effective_at < $1 AND e.effective_at + $2::interval <= $1 "
            "AND NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.money_entry_id = e.id)",
            cutoff,
            hold,
            zone,
        )
        negative = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM bench_taken GROUP BY partner_id, currency HAVING sum(amount) < 0) x"
        )
        if negative:  # the seed earns commission only; a carried negative balance is not modelled here
            raise RuntimeError(f"{quarter}: {negative} statements would close negative")
        made = int(
            (
                await conn.execute(
                    "INSERT INTO statements (id, partner_id, quarter, currency, status, opening_balance, lines_total, "
                    "closing_balance, payable_amount, payout_date, created_at, approved_at, approved_by) "
                    "SELECT gen_random_uuid(), partner_id, $1, currency, 'approved', 0, sum(amount), sum(amount), "
                    "sum(amount), $2, $3, $4, $5 FROM bench_taken GROUP BY partner_id, currency",
                    quarter,
                    payout,
                    closed_at,
                    closed_at + timedelta(days=1),
                    CLOSED_BY,
                )
            ).split()[-1]
        )
        await conn.execute(
            "INSERT INTO statement_lines (statement_id, money_entry_id, amount, label) "
            "SELECT s.id, t.id, t.amount, CASE WHEN t.own >= $1 THEN NULL "
            "WHEN c.quarter IS NULL THEN 'dated ' || t.own "
            "WHEN t.recorded_at >= c.closed_at THEN 'dated ' || t.own || ', recorded after ' || t.own || ' was closed' "
            "ELSE 'dated ' || t.own || ', held then (hold period)' END "
            "FROM bench_taken t JOIN statements s ON s.partner_id = t.partner_id AND s.currency = t.currency "
            "AND s.quarter = $1 LEFT JOIN quarter_closes c ON c.quarter = t.own AND t.own < $1 ORDER BY t.id",
            quarter,
        )
        await conn.execute("UPDATE quarter_closes SET statements = $2 WHERE quarter = $1", quarter, made)
    return made
