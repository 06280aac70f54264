"""What the benchmarks of one operation (bench/preview.py, bench/payouts.py) share: the options every
run takes, a database of the run's own migrated and seeded with closed quarters, the service started
over it and stopped (the database dropped) however the run ends, its checks, and the results document
it writes under bench/results/ and sums up on stdout.

A script keeps what is its own: its options and settings, what it measures and checks, its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from bench import deliveries, seed
from bench.database import BenchDatabase, server_info
from bench.run import Plan, Service, _free_port, git_commit, machine_info

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ServiceT = TypeVar("ServiceT", bound=Service)


def log(text: str) -> None:
    """A line on stderr, with the time."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def fmt(value: float | None, spec: str) -> str:
    """`value` formatted with `spec`, or "-" when there is none."""
    return "-" if value is None else format(value, spec)


def call(
    method: str, url: str, *, key: str, body: dict[str, Any] | None = None, timeout: float = 600
) -> tuple[int, bytes, float]:
    """One request: (status, body, seconds)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - 127.0.0.1, built here
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("content-type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, answer.read(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read(), time.monotonic() - started


@dataclass
class Checks:
    """The run's checks of the outcome, each logged as it is made."""

    results: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.results.append({"check": name, "ok": bool(ok), "detail": detail})
        log(f"check {name}: {'OK' if ok else 'FAILED'} - {detail}")

    @property
    def ok(self) -> bool:
        return all(r["ok"] for r in self.results)


# --- options --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Common:
    """The options every run takes: the seeded data, the service's processes and port, the database's
    name and whether it is kept, where the JSON goes, and where py-spy's profile goes (if anywhere)."""

    scale: seed.Scale
    smoke: bool
    workers: int
    port: int
    db_name: str
    results_dir: Path
    keep_database: bool
    profile_dir: Path | None


def add_scale_arguments(parser: argparse.ArgumentParser, smoke_help: str) -> None:
    """--scale and --smoke."""
    parser.add_argument("--scale", choices=sorted(seed.SCALES), default="small", help="seeded data (default small)")
    parser.add_argument("--smoke", action="store_true", help=smoke_help)


def add_workers_argument(parser: argparse.ArgumentParser) -> None:
    """--workers."""
    parser.add_argument("--workers", type=int, default=None, help="service processes (default: one per core)")


def add_place_arguments(parser: argparse.ArgumentParser, profile_help: str) -> None:
    """--port, --db-name, --results-dir, --keep-database and --profile."""
    parser.add_argument("--port", type=int, default=None, help="service port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--db-name", default=None, help="benchmark database name (default bench_<random>)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR", help=profile_help)


def common_options(args: argparse.Namespace) -> Common:
    """The common options from a parser given add_scale_arguments, add_workers_argument and
    add_place_arguments, with their defaults filled in."""
    return Common(
        scale=seed.SCALES["smoke" if args.smoke else args.scale],
        smoke=args.smoke,
        workers=args.workers or os.cpu_count() or 1,
        port=args.port or _free_port(),
        db_name=args.db_name or f"bench_{secrets.token_hex(4)}",
        results_dir=args.results_dir,
        keep_database=args.keep_database,
        profile_dir=args.profile,
    )


# --- a run ----------------------------------------------------------------------------------------


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Run:
    """One run of a benchmark called `name` (bench/<name>.py): when it started, its database, the
    webhook secret and tag it uses, and what it gathers for its results document (timings, checks,
    failures, its own report, the service's log tail)."""

    def __init__(self, name: str, common: Common, announce: str) -> None:
        """Starts the clock, turns SIGTERM into KeyboardInterrupt (so the database is dropped all the
        same) and logs `announce`."""
        self.name, self.common = name, common
        self.started_at = datetime.now(UTC)
        self.load_at_start = [round(x, 2) for x in os.getloadavg()]
        self.stamp = self.started_at.strftime("%Y%m%dT%H%M%SZ")
        signal.signal(signal.SIGTERM, _on_signal)
        log(announce)
        common.results_dir.mkdir(parents=True, exist_ok=True)
        self.db = BenchDatabase(common.db_name)
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.tag = secrets.token_hex(4)
        self.timings: dict[str, float] = {}
        self.checks = Checks()
        self.failures: list[str] = []
        self.report: dict[str, Any] = {}
        """The script's own part of the results document; empty when the run did not get that far."""
        self.service_log = ""

    def plan(self, *, duration: float = 0.0, webhook_rate_cap: float = 0.0) -> Plan:
        """The plan bench/run.py's Service and profiler take, for this run's service."""
        c = self.common
        return Plan(
            scale=c.scale,
            duration=duration,
            baseline_duration=duration,
            warmup=0.0,
            connections=1,
            threads=1,
            workers=c.workers,
            port=c.port,
            db_name=c.db_name,
            results_dir=c.results_dir,
            webhook_rate_cap=webhook_rate_cap,
            smoke=c.smoke,
            keep_database=c.keep_database,
            only=(),
            profile_dir=c.profile_dir,
        )

    @contextmanager
    def serving(
        self, make: Callable[[Path], ServiceT], *, describe: Callable[[BaseException], str] = repr
    ) -> Iterator[ServiceT]:
        """The service `make` builds (given the path of its log) over the run's database, created here.
        A RuntimeError, OSError, ValueError or KeyError ends the block as a failure of the run (logged
        as `describe` puts it); however the block ends, the service is stopped, its log's tail kept
        and the database dropped (kept with --keep-database)."""
        with tempfile.TemporaryDirectory(prefix=f"partners-bench-{self.name}-") as tmp:
            service = make(Path(tmp) / "service.log")
            asyncio.run(self.db.create())
            try:
                yield service
            except (RuntimeError, OSError, ValueError, KeyError) as exc:
                log(f"failed: {describe(exc)}")
                self.failures.append(repr(exc))
            finally:
                service.stop()
                self.service_log = service.log_tail()
                if self.common.keep_database:
                    log(f"database kept: {self.db.dsn}")
                else:
                    asyncio.run(self.db.drop())

    def migrate_and_seed(self, service: Service) -> tuple[seed.SeedResult, seed.PayoutSeedResult]:
        """Migrates the database and seeds it: `seed.seed`, then `seed.seed_payouts` (payee details
        sealed with the key the service seals with, every quarter over closed with its statements).
        Their times go to `timings`."""
        self.timings["migrate_s"] = self.db.migrate()
        log(f"migrated in {self.timings['migrate_s']:.1f} s")
        sealing_key = service.env()["PARTNERS_SECRETS_KEY"].split(",")[0].strip()

        async def do_seed() -> tuple[seed.SeedResult, seed.PayoutSeedResult]:
            conn = await self.db.connect()
            try:
                seeded = await seed.seed(conn, self.common.scale)
                log(f"seeded {self.common.scale.describe()} in {seeded.seconds:.1f} s")
                return seeded, await seed.seed_payouts(conn, seeded.targets, sealing_key)
            finally:
                await conn.close()

        seeded, paid = asyncio.run(do_seed())
        self.timings["seed_s"] = seeded.seconds
        self.timings |= {f"seed_{k}": v for k, v in paid.steps.items()}
        return seeded, paid

    def start(self, service: Service) -> str:
        """Starts the service (its time goes to `timings`) and returns an admin API key made for the run.
        The workers' first pass, the scheduled jobs due at start, is still to come."""
        t0 = time.monotonic()
        service.start()
        self.timings["service_start_s"] = time.monotonic() - t0
        log(f"service up on {service.base_url} (pid {service.pid}, {self.common.workers} processes)")
        return deliveries.create_admin_key(service.env(), f"bench {self.tag} {self.name}")

    def finish(
        self,
        argv: Sequence[str] | None,
        *,
        scale: dict[str, Any],
        settings: dict[str, Any],
        what: str,
        table: Callable[[dict[str, Any]], str | None],
    ) -> int:
        """Writes the results document, `<stamp>-<name>-<scale>.json` (the service's log tail in it
        unless the run is ok), prints the summary (a line saying `what` ran and where, the timings, the
        script's `table` of the document when it has a report and `table` gives one, the checks, the
        failures) and returns the exit code: 0, or 1 when the run failed or a check did."""
        ok = not self.failures and self.checks.ok and bool(self.report)
        machine = {**machine_info(), "load_average_at_start_1_5_15": self.load_at_start}
        pg = asyncio.run(server_info(self.db.admin_dsn))
        full = {
            "format": 1,
            "ok": ok,
            "failures": self.failures,
            "checks": self.checks.results,
            "started_at": self.started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "command": " ".join([f"bench/{self.name}.py", *(argv if argv is not None else sys.argv[1:])]),
            "commit": git_commit(),
            "scale": scale,
            "settings": settings,
            "machine": machine,
            "postgres": {k: v for k, v in pg.items() if k != "connections_in_use"},
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            **self.report,
        }
        if not ok:
            full["service_log_tail"] = self.service_log
        path = self.common.results_dir / f"{self.stamp}-{self.name}-{self.common.scale.name}.json"
        path.write_text(json.dumps(full, indent=2, default=str) + "\n")
        print()
        print(
            f"{what}; {self.common.workers} service processes; {machine['cores']} cores {machine['cpu']}, "
            f"PostgreSQL {pg['version']}; load average {self.load_at_start[0]:g} at start, "
            f"{machine['load_average_1_5_15'][0]:g} at the end"
        )
        print("seeding: " + ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in self.timings.items()))
        shown = table(full) if self.report else None
        if shown is not None:
            print(shown)
        for c in self.checks.results:
            print(f"check {c['check']}: {'OK' if c['ok'] else 'FAILED'} - {c['detail']}")
        if self.failures:
            print("FAILED: " + "; ".join(self.failures))
        print(f"results: {path}")
        return 0 if ok else 1
