"""Payout run benchmark (issue 22): a run over every partner's approved statement, next to the store
events the service applies meanwhile, with a baseline of the same events in the same invocation.

    uv run python bench/payouts.py --scale large     # 10,000 partners: 10,000 transfers and invoices
    uv run python bench/payouts.py --scale small     # 200 partners, a minute or two
    uv run python bench/payouts.py --smoke           # 20 partners; what CI runs (tests/test_bench_smoke.py)

Creates a Postgres database of its own (dropped at the end, even on failure), migrates it, seeds it
(`bench.seed.seed`, then `bench.seed.seed_payouts`: payee details sealed with the service's key, the
self-billing agreement published and accepted, every quarter over closed with its statements, each
partner's newest one approved), starts `partners serve` as production does, and measures:

1. baseline: signed `order.paid` store events at a fixed rate for `--baseline-seconds`, nothing else
   going on: accepted -> applied latency and events applied per second;
2. `POST /v1/payout-runs`: the run and its SEPA file ("file written");
3. while the workers render the run's invoice PDFs, the same store events at the same rate, and the
   run's progress (its summary in `GET /v1/payout-runs?limit=1`, `invoice_documents`) read every
   `--poll-seconds`, until every invoice is rendered ("invoices rendered").

Prints the figures with the during ÷ baseline ratios, checks the outcome (statements in payment,
invoice numbers without gaps, a PDF per invoice, the SEPA file's count and sum) and writes JSON under
bench/results/. Exit 0, or 1 when a check failed; targets are reported, never turned into the exit
code. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `bench` and `app` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import check, runs, seed, traffic
from bench.database import BenchDatabase
from bench.run import Plan, Service, profiler
from bench.runs import Checks, call, fmt, log
from bench.tools import Schedule, percentile, rounded, send_slots

TARGETS = {"file_written_s": 30.0, "invoices_rendered_s": 600.0}
"""Issue 22, at the large scale (10,000 partners) on this machine."""
DEBTOR = {
    "PARTNERS_PAYOUT_DEBTOR_NAME": "Qalyptus SAS",
    "PARTNERS_PAYOUT_DEBTOR_IBAN": "FR1420041010050500013M02606",
    "PARTNERS_PAYOUT_DEBTOR_BIC": "PSSTFRPP",
    "PARTNERS_PAYOUT_DEBTOR_STREET": "1 rue de la Paix",
    "PARTNERS_PAYOUT_DEBTOR_POSTAL_CODE": "75002",
    "PARTNERS_PAYOUT_DEBTOR_CITY": "Paris",
    "PARTNERS_PAYOUT_DEBTOR_COUNTRY": "FR",
    "PARTNERS_VENDOR_VAT_ID": "FR40303265045",
    "PARTNERS_VENDOR_ADDRESS": "1 rue de la Paix, 75002 Paris",
}
SEPA = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


# --- configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    common: runs.Common
    rate: float
    baseline_seconds: float
    poll_seconds: float
    render_timeout: float
    render_processes: int | None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/payouts.py",
        description="A payout run's file and invoices, and the store events applied meanwhile (issue 22).",
    )
    runs.add_scale_arguments(parser, "tiny run for CI: smoke seed, 3 s baseline")
    parser.add_argument("--rate", type=float, default=25.0, help="store events per second, both phases (default 25)")
    parser.add_argument(
        "--baseline-seconds", type=float, default=None, help="store events sent for the baseline (default 30; smoke 3)"
    )
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="pause between progress reads (default 1)")
    parser.add_argument(
        "--render-timeout", type=float, default=1800.0, help="seconds to wait for every invoice (default 1800)"
    )
    runs.add_workers_argument(parser)
    parser.add_argument(
        "--render-processes",
        type=int,
        default=None,
        help="PARTNERS_INVOICE_RENDER_PROCESSES for each worker (default: the service's, 2)",
    )
    runs.add_place_arguments(parser, "py-spy records the service while it renders")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    baseline = args.baseline_seconds if args.baseline_seconds is not None else (3.0 if args.smoke else 30.0)
    if not 1 <= baseline <= 240:
        parser.error("--baseline-seconds must be between 1 and 240")
    return Options(
        common=runs.common_options(args),
        rate=args.rate,
        baseline_seconds=baseline,
        poll_seconds=max(0.1, args.poll_seconds),
        render_timeout=args.render_timeout,
        render_processes=args.render_processes,
    )


# --- the service ----------------------------------------------------------------------------------


class PayoutService(Service):
    """`partners serve` as bench/run.py starts it (production settings, a worker in each process),
    with the account payouts are made from and the vendor's VAT id configured."""

    def __init__(self, plan: Plan, db: BenchDatabase, secret: str, log_path: Path, render_processes: int | None):
        super().__init__(plan, db, secret, log_path)
        self.render_processes = render_processes

    def env(self) -> dict[str, str]:
        env = {**DEBTOR, **super().env()}
        if self.render_processes:
            env["PARTNERS_INVOICE_RENDER_PROCESSES"] = str(self.render_processes)
        return env


# --- store events at a fixed rate, from a process of their own --------------------------------------


async def _send(
    port: int, secret: str, targets: Sequence[seed.Target], prefix: str, rate: float, seconds: float, stop: Any
) -> dict[str, Any]:
    """Open loop: event n is due at start + n / rate. Each is signed when it leaves (a phase may last
    longer than the five minutes a signature is accepted for): an `order.paid` of two new-licence lines
    for the partner's customer 0, partners in turn, as bench/run.py's webhooks scenario sends them."""
    host = f"127.0.0.1:{port}"
    schedule = Schedule(max(1, int(rate * seconds)), rate)

    def request(n: int) -> bytes:
        now = datetime.now(UTC)
        order = f"{prefix}-{n}"
        body = traffic.order_event(order, targets[n % len(targets)], now - timedelta(minutes=1))
        return traffic.webhook_request(
            host=host, secret=secret, webhook_id=f"msg-{order}", body=body, timestamp=int(now.timestamp())
        )

    connections = max(2, math.ceil(rate / 25))
    sent, statuses, errors = await send_slots(
        "127.0.0.1", port, schedule, request, connections=connections, stopped=stop.is_set
    )
    duration = time.monotonic() - schedule.start
    return {"sent": sent, "statuses": statuses, "errors": errors, "duration_s": duration, "late": schedule.late}


def _sender(
    port: int, secret: str, targets: list[seed.Target], prefix: str, rate: float, seconds: float, stop: Any, out: Any
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it with `stop`
    out.put(asyncio.run(_send(port, secret, targets, prefix, rate, seconds, stop)))


class Sender:
    """Store events at a fixed rate from a process of its own (so the measuring process's own work, a
    large JSON to parse, never delays them), for `seconds` or until stopped."""

    def __init__(
        self, port: int, secret: str, targets: list[seed.Target], prefix: str, rate: float, seconds: float
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop_event = context.Event()
        self.results = context.Queue()
        self.prefix = prefix
        self.process = context.Process(
            target=_sender,
            args=(port, secret, targets, prefix, rate, seconds, self.stop_event, self.results),
            name=f"sender-{prefix}",
            daemon=True,
        )

    def __enter__(self) -> Sender:
        self.process.start()
        return self

    def finish(self, timeout: float) -> dict[str, Any]:
        """Its figures once it has sent everything (or was stopped)."""
        try:
            return dict(self.results.get(timeout=timeout))
        finally:
            self.process.join(timeout=10)

    def halt(self) -> None:
        self.stop_event.set()

    def __exit__(self, *_exc: object) -> None:
        self.stop_event.set()
        self.process.join(timeout=15)
        if self.process.is_alive():
            self.process.terminate()  # our own child, by its handle
            self.process.join(timeout=5)


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class EventsPhase:
    """Store events sent during one phase, and how they were applied."""

    name: str
    rate: float
    sent: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    duration_s: float = 0.0
    late: int = 0
    applied: int = 0
    not_applied: int = 0
    applied_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    @property
    def held_rate(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.name,
            "rate": self.rate,
            "sent": self.sent,
            "held_rate": round(self.held_rate, 2),
            "answers": self.statuses,
            "errors": self.errors,
            "late": self.late,
            "duration_s": round(self.duration_s, 2),
            "applied": self.applied,
            "not_applied": self.not_applied,
            "applied_per_s": rounded(self.applied_per_s, 2),
            "latency_p50_ms": rounded(self.p50_ms, 1),
            "latency_p99_ms": rounded(self.p99_ms, 1),
            "latency_max_ms": rounded(self.max_ms, 1),
        }


async def read_phase(db: BenchDatabase, phase: EventsPhase, prefix: str) -> None:
    """Once its events are all applied (at most 300 s): accepted -> applied latency (applied_at -
    received_at, applied_at being the start of the applier's batch) and events applied per second
    (applied ÷ time from the first received to the last applied)."""
    conn = await db.connect()
    try:
        await check.wait_until_applied(conn, 300)
        latencies, phase.not_applied = await check.apply_latencies_ms(conn, prefix)
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'applied') AS applied, "
            "extract(epoch FROM max(applied_at) - min(received_at))::float8 AS span "
            "FROM webhook_events WHERE subject LIKE $1",
            "order:" + prefix.replace("_", r"\_") + "-%",
        )
    finally:
        await conn.close()
    phase.applied = int(row["applied"])
    span = row["span"]
    phase.applied_per_s = phase.applied / span if span else None
    phase.p50_ms, phase.p99_ms = percentile(latencies, 50), percentile(latencies, 99)
    phase.max_ms = latencies[-1] if latencies else None


def record_sent(phase: EventsPhase, result: dict[str, Any]) -> None:
    phase.sent, phase.errors = int(result["sent"]), int(result["errors"])
    phase.statuses = {str(k): int(v) for k, v in sorted(result["statuses"].items())}
    phase.duration_s, phase.late = float(result["duration_s"]), int(result["late"])


async def backlog(db: BenchDatabase) -> int:
    conn = await db.connect()
    try:
        return await check.backlog(conn)
    finally:
        await conn.close()


@dataclass
class Poll:
    at_s: float
    issued: int
    rendered: int
    failed: int
    read_ms: float
    answer_bytes: int


# --- checks ---------------------------------------------------------------------------------------


def check_answer(checks: Checks, answer: dict[str, Any], paid: seed.PayoutSeedResult) -> None:
    transfers = answer["transfer_list"]
    checks.add(
        "transfers",
        answer["transfers"] == len(transfers) == paid.approved_partners,
        f"{answer['transfers']:,} transfers, {paid.approved_partners:,} partners with an approved statement",
    )
    total = sum(int(t["amount"]) for t in transfers)
    checks.add("control sum", answer["control_sum"] == total, f"{answer['control_sum']:,} = sum of the transfers")
    items = answer["statements"]
    refused = [s for s in items if s["not_payable_because"]]
    checks.add(
        "statements taken",
        len(items) == paid.approved and not refused and all(s["invoice_number"] for s in items),
        f"{len(items):,} statements in the run of {paid.approved:,} approved, {len(refused)} not payable",
    )


def check_sepa(checks: Checks, xml: bytes, answer: dict[str, Any]) -> None:
    root = ET.fromstring(xml)  # noqa: S314 - the service's own file
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", SEPA)
    count = int(header.findtext("p:NbOfTxs", namespaces=SEPA) or -1) if header is not None else -1
    control = header.findtext("p:CtrlSum", namespaces=SEPA) if header is not None else None
    amounts = [round(float(a.text or 0) * 100) for a in root.iterfind(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", SEPA)]
    expected = f"{answer['control_sum'] // 100}.{answer['control_sum'] % 100:02d}"
    checks.add(
        "SEPA file",
        count == len(amounts) == answer["transfers"] and sum(amounts) == answer["control_sum"] and control == expected,
        f"NbOfTxs {count:,}, {len(amounts):,} transfers, CtrlSum {control} (run: {expected}), {len(xml):,} bytes",
    )


async def check_database(checks: Checks, db: BenchDatabase, run_id: Any, paid: seed.PayoutSeedResult) -> None:
    conn = await db.connect()
    try:
        moved = await conn.fetchrow(
            "SELECT count(*) AS taken, count(*) FILTER (WHERE s.status = 'in_payment') AS in_payment "
            "FROM payout_run_statements r JOIN statements s ON s.id = r.statement_id "
            "WHERE r.run_id = $1 AND r.transfer_id IS NOT NULL",
            run_id,
        )
        checks.add(
            "statements in payment",
            moved["taken"] == moved["in_payment"] == paid.approved,
            f"{moved['in_payment']:,} of the run's {moved['taken']:,} statements are in_payment",
        )
        numbers = await conn.fetch(
            "SELECT i.series, i.year, i.sequence, i.number FROM payout_run_statements r "
            "JOIN invoices i ON i.id = r.invoice_id WHERE r.run_id = $1 ORDER BY i.sequence",
            run_id,
        )
        sequences = [int(r["sequence"]) for r in numbers]
        formed = all(r["number"] == f"{r['series']}-{r['year']}-{r['sequence']:06d}" for r in numbers)
        checks.add(
            "invoice numbers",
            sequences == list(range(1, len(numbers) + 1)) and formed and len(numbers) == paid.approved,
            f"{len(numbers):,} invoices numbered 1..{sequences[-1] if sequences else 0:,} without gaps"
            + (f" ({numbers[0]['number']} to {numbers[-1]['number']})" if numbers else ""),
        )
        docs = await conn.fetchrow(
            "SELECT count(*) AS invoices, count(d.pdf) AS pdfs, count(d.error) AS errors FROM invoices i "
            "LEFT JOIN invoice_documents d ON d.invoice_id = i.id"
        )
        checks.add(
            "documents",
            docs["invoices"] == docs["pdfs"] == paid.approved,
            f"{docs['pdfs']:,} rendered documents for {docs['invoices']:,} invoices ({docs['errors']} with an error)",
        )
        sample = await conn.fetch(
            "SELECT i.number, substring(d.pdf FROM 1 FOR 5) AS head, length(d.pdf) AS size FROM invoice_documents d "
            "JOIN invoices i ON i.id = d.invoice_id WHERE d.run_id = $1 ORDER BY random() LIMIT 3",
            run_id,
        )
        checks.add(
            "PDF sample",
            len(sample) == min(3, paid.approved) and all(bytes(r["head"]).startswith(b"%PDF-") for r in sample),
            ", ".join(f"{r['number']}: {bytes(r['head'])!r} {r['size']:,} bytes" for r in sample),
        )
        vat = {
            r["vat_treatment"]: (int(r["n"]), int(r["net"]), int(r["vat"]), int(r["total"]))
            for r in await conn.fetch(
                "SELECT vat_treatment, count(*) AS n, sum(net) AS net, sum(vat_amount) AS vat, sum(total) AS total "
                "FROM invoices GROUP BY vat_treatment"
            )
        }
        counts = {k: v[0] for k, v in sorted(vat.items())}
        net = sum(v[1] for v in vat.values())
        charged = {k for k, v in vat.items() if v[2]}
        checks.add(
            "VAT treatments",
            counts == paid.treatments and net == paid.approved_amount and charged <= {"domestic"},
            f"invoices by treatment {counts}; net {net:,} of {paid.approved_amount:,} approved; VAT charged on "
            f"{sorted(charged)}",
        )
    finally:
        await conn.close()


# --- the table ------------------------------------------------------------------------------------


def _ratio(during: float | None, baseline: float | None) -> float | None:
    return during / baseline if during is not None and baseline else None


def render(report: dict[str, Any]) -> str:
    f = report["figures"]
    out = ["figure                                                  value   target"]

    def line(name: str, value: str, target: str = "") -> None:
        out.append(f"{name:<50} {value:>12}   {target}")

    for t in report["targets"]:
        goal = f"< {t['goal']:g} s  {'met' if t['met'] else 'MISSED'}"
        if t["target"] == "file_written_s":
            line("file written (POST /v1/payout-runs)", f"{t['value']:.2f} s", goal)
        else:
            line(f"invoices rendered ({f['invoices']:,}, from the POST)", f"{t['value']:.1f} s", goal)
    line("  of which after the POST's answer", f"{f['rendered_after_answer_s']:.1f} s")
    line("  invoices/s", fmt(f["invoices_per_s"], ",.1f"))
    line("  last rendered_at - run created_at (database)", f"{fmt(f['rendered_db_s'], '.1f')} s")
    line("run answer (POST)", f"{f['post_answer_bytes'] / 1e6:.1f} MB")
    line("progress reads (GET /v1/payout-runs?limit=1)", f"{f['polls']:,}")
    line("  read time p50 / max", f"{fmt(f['poll_p50_ms'], ',.0f')} / {fmt(f['poll_max_ms'], ',.0f')} ms")
    line("  answer size", f"{f['poll_answer_bytes'] / 1e6:.1f} MB")
    line("SEPA file (GET sepa.xml)", f"{f['sepa_bytes'] / 1e6:.1f} MB", f"read in {f['sepa_read_s']:.2f} s")
    out.append("")
    base, during = report["events"]["baseline"], report["events"]["during_rendering"]
    out.append(f"store events at {base['rate']:g}/s       baseline   during rendering   during ÷ baseline")
    for label, key, spec in (
        ("sent (held rate /s)", "held_rate", ",.1f"),
        ("applied/s", "applied_per_s", ",.1f"),
        ("accepted->applied p50 ms", "latency_p50_ms", ",.0f"),
        ("accepted->applied p99 ms", "latency_p99_ms", ",.0f"),
        ("accepted->applied max ms", "latency_max_ms", ",.0f"),
    ):
        ratio = _ratio(during[key], base[key])
        out.append(f"{label:<28} {fmt(base[key], spec):>12} {fmt(during[key], spec):>18} {fmt(ratio, '.2f'):>19}")
    out.append(
        f"{'events (answered 202)':<28} {base['sent']:>7,} ({base['answers'].get('202', 0):,})"
        f" {during['sent']:>10,} ({during['answers'].get('202', 0):,})"
    )
    return "\n".join(out)


# --- a run ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    common = opts.common
    run = runs.Run(
        "payouts",
        common,
        f"payout benchmark: scale {common.scale.name} ({common.scale.describe()}), store events at {opts.rate:g}/s, "
        f"{common.workers} service processes, database {common.db_name}, port {common.port}",
    )
    plan = run.plan(duration=opts.baseline_seconds, webhook_rate_cap=opts.rate)
    db, secret = run.db, run.secret

    def make(log_path: Path) -> PayoutService:
        return PayoutService(plan, db, secret, log_path, opts.render_processes)

    with run.serving(make, describe=str) as service:
        seeded, paid = run.migrate_and_seed(service)
        for name, seconds in paid.steps.items():
            log(f"seed step {name.removesuffix('_s')}: {seconds:.2f} s")
        log(
            f"closed {', '.join(paid.quarters)}: {paid.rows.get('statements', 0):,} statements, "
            f"{paid.rows.get('statement_lines', 0):,} lines; {paid.approved:,} approved (one per partner, "
            f"{paid.approved_partners:,} partners, {paid.approved_amount / 100:,.2f} EUR), the rest paid; "
            f"payees by VAT treatment {paid.treatments}"
        )
        if paid.approved_partners != common.scale.partners:
            log(f"note: {common.scale.partners - paid.approved_partners} partners earned nothing in a closed quarter")

        admin = run.start(service)
        time.sleep(1.0 if common.smoke else 5.0)  # the workers' first pass: scheduled jobs due at start

        # 1. baseline: store events alone
        baseline = EventsPhase("baseline", opts.rate)
        prefix = f"bench-{run.tag}-paybase"
        log(f"baseline: store events at {opts.rate:g}/s for {opts.baseline_seconds:g} s, nothing else")
        with Sender(common.port, secret, seeded.targets, prefix, opts.rate, opts.baseline_seconds) as sender:
            record_sent(baseline, sender.finish(opts.baseline_seconds + 120))
        asyncio.run(read_phase(db, baseline, prefix))
        log(
            f"baseline: {baseline.sent:,} sent ({baseline.held_rate:.1f}/s), {baseline.applied:,} applied "
            f"({fmt(baseline.applied_per_s, '.1f')}/s), p50 {fmt(baseline.p50_ms, '.0f')} ms, "
            f"p99 {fmt(baseline.p99_ms, '.0f')} ms"
        )

        # 2. the run: its file
        payment_date = (datetime.now(UTC) + timedelta(days=1)).date()
        during = EventsPhase("during_rendering", opts.rate)
        prefix = f"bench-{run.tag}-payrender"
        polls: list[Poll] = []
        log(f"POST /v1/payout-runs (payment date {payment_date}) for {paid.approved:,} approved statements")
        post_started = time.monotonic()
        status, body, post_s = call(
            "POST", f"{service.base_url}/v1/payout-runs", key=admin, body={"payment_date": str(payment_date)}
        )
        if status != 201:
            raise RuntimeError(f"POST /v1/payout-runs answered {status}: {body[:2000]!r}")
        answer = json.loads(body)
        run_id = answer["id"]
        log(
            f"run {answer['reference']}: {answer['transfers']:,} transfers, "
            f"{answer['control_sum'] / 100:,.2f} EUR, file written in {post_s:.2f} s "
            f"(answer {len(body) / 1e6:.1f} MB)"
        )

        # 3. its invoices, rendered while store events keep coming
        done_at: float | None = None
        with (
            Sender(common.port, secret, seeded.targets, prefix, opts.rate, opts.render_timeout + 60) as sender,
            profiler(service.pid, plan, "payouts-render", common.profile_dir is not None),
        ):
            deadline = time.monotonic() + opts.render_timeout
            last_rendered, last_at = 0, time.monotonic()
            while time.monotonic() < deadline:
                # The run's summary, as the list of runs gives it (newest first): its progress without
                # its 10,000 transfers and statements.
                status, raw, read_s = call("GET", f"{service.base_url}/v1/payout-runs?limit=1", key=admin)
                now = time.monotonic()
                if status != 200:
                    raise RuntimeError(f"GET /v1/payout-runs?limit=1 answered {status}: {raw[:500]!r}")
                [summary] = json.loads(raw)["items"]
                if summary["id"] != run_id:
                    raise RuntimeError(f"the newest run is {summary['id']}, not {run_id}")
                progress = summary["invoice_documents"]
                poll = Poll(
                    now - post_started,
                    int(progress["issued"]),
                    int(progress["rendered"]),
                    int(progress["failed"]),
                    read_s * 1000,
                    len(raw),
                )
                polls.append(poll)
                pace = (poll.rendered - last_rendered) / (now - last_at) if now > last_at else 0.0
                last_rendered, last_at = poll.rendered, now
                waiting = asyncio.run(backlog(db))
                log(
                    f"{poll.at_s:7.1f} s  invoices rendered {poll.rendered:>6,}/{poll.issued:,} "
                    f"({pace:5.1f}/s), failed {poll.failed}; store events waiting {waiting}; "
                    f"progress read {poll.read_ms:,.0f} ms"
                )
                if poll.rendered >= poll.issued:
                    done_at = now
                    break
                time.sleep(opts.poll_seconds)
            sender.halt()
            record_sent(during, sender.finish(120))
        if done_at is None:
            run.failures.append(f"invoices not all rendered within {opts.render_timeout:g} s")
        asyncio.run(read_phase(db, during, prefix))
        log(
            f"during rendering: {during.sent:,} sent ({during.held_rate:.1f}/s), {during.applied:,} applied "
            f"({fmt(during.applied_per_s, '.1f')}/s), p50 {fmt(during.p50_ms, '.0f')} ms, "
            f"p99 {fmt(during.p99_ms, '.0f')} ms"
        )

        # checks
        checks = run.checks
        check_answer(checks, answer, paid)
        status, xml, sepa_s = call("GET", f"{service.base_url}/v1/payout-runs/{run_id}/sepa.xml", key=admin)
        if status == 200:
            check_sepa(checks, xml, answer)
        else:
            checks.add("SEPA file", False, f"GET sepa.xml answered {status}")
        asyncio.run(check_database(checks, db, run_id, paid))
        for phase in (baseline, during):
            refused = phase.sent - int(phase.statuses.get("202", 0))
            checks.add(
                f"store events {phase.name}",
                phase.sent > 0 and refused == 0 and phase.errors == 0 and phase.not_applied == 0,
                f"{phase.sent:,} sent, answers {phase.statuses}, {phase.errors} errors, "
                f"{phase.applied:,} applied, {phase.not_applied} not applied",
            )

        async def rendered_span() -> float | None:
            conn = await db.connect()
            try:
                value = await conn.fetchval(
                    "SELECT extract(epoch FROM max(d.rendered_at) - r.created_at)::float8 FROM invoice_documents d "
                    "JOIN payout_runs r ON r.id = d.run_id WHERE d.run_id = $1 GROUP BY r.created_at",
                    run_id,
                )
                return float(value) if value is not None else None
            finally:
                await conn.close()

        rendered_db_s = asyncio.run(rendered_span())
        reads = sorted(p.read_ms for p in polls)
        invoices = polls[-1].issued if polls else 0
        rendered_s = (done_at - post_started) if done_at is not None else None
        figures = {
            "invoices": invoices,
            "file_written_s": round(post_s, 3),
            "invoices_rendered_s": rounded(rendered_s, 2),
            "rendered_after_answer_s": round((done_at or time.monotonic()) - post_started - post_s, 2),
            "invoices_per_s": rounded(invoices / rendered_s if rendered_s else None, 2),
            "rendered_db_s": rounded(rendered_db_s, 2),
            "post_answer_bytes": len(body),
            "polls": len(polls),
            "poll_p50_ms": rounded(percentile(reads, 50), 1),
            "poll_max_ms": rounded(reads[-1] if reads else None, 1),
            "poll_answer_bytes": polls[-1].answer_bytes if polls else 0,
            "sepa_bytes": len(xml) if status == 200 else 0,
            "sepa_read_s": round(sepa_s, 3),
        }
        targets = [
            {"target": name, "value": value, "goal": goal, "met": value < goal, "judged_at": "large"}
            for name, value, goal in (
                ("file_written_s", post_s, TARGETS["file_written_s"]),
                (
                    "invoices_rendered_s",
                    rendered_s if rendered_s is not None else float("inf"),
                    TARGETS["invoices_rendered_s"],
                ),
            )
        ]
        run.report = {
            "figures": figures,
            "targets": targets,
            "events": {"baseline": baseline.as_dict(), "during_rendering": during.as_dict()},
            "progress": [p.__dict__ for p in polls],
            "run": {
                "id": run_id,
                "reference": answer["reference"],
                "payment_date": str(payment_date),
                "transfers": answer["transfers"],
                "control_sum": answer["control_sum"],
            },
            "seeded": {
                "rows": {**seeded.rows, **paid.rows},
                "quarters_closed": paid.quarters,
                "approved_statements": paid.approved,
                "approved_partners": paid.approved_partners,
                "approved_amount": paid.approved_amount,
                "treatments": paid.treatments,
            },
        }
    scale = common.scale
    return run.finish(
        argv,
        scale={"name": scale.name, "partners": scale.partners},
        settings={
            "rate": opts.rate,
            "baseline_seconds": opts.baseline_seconds,
            "poll_seconds": opts.poll_seconds,
            "service_processes": common.workers,
            "render_processes_per_worker": opts.render_processes or "default (2)",
            "smoke": common.smoke,
        },
        what=f"payout run, scale {scale.name}: {scale.partners:,} partners",
        table=render,
    )


if __name__ == "__main__":
    raise SystemExit(main())
