"""The load benchmark's smoke runs (`bench/run.py --smoke`, `bench/payouts.py --smoke`): keep the measuring
instruments from rotting.

It runs the real thing in miniature: its own Postgres database (random name, dropped at the end), the
service started as in production on a port of its own, wrk, hey and pgbench. Missing load generators
that cannot be installed fail the test; they never skip it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("PARTNERS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _database_exists(name: str) -> bool:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=10)
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def _smoke(tmp_path: Path, script: str, results: str, timeout: float, *extra: str) -> tuple[dict[str, Any], str]:
    """Run `bench/<script> --smoke` on a database and a port of its own, as production starts the
    service; its one report (`*-<results>.json`) and what it printed. It must exit 0, leave no
    database behind and judge itself ok. A missing load generator that could not be installed (exit 3)
    fails the test, never skips it."""
    database = f"bench_smoke_{os.getpid()}_{secrets.token_hex(3)}"
    command = [sys.executable, str(ROOT / "bench" / script), "--smoke", "--db-name", database]
    command += ["--port", str(_free_port()), "--results-dir", str(tmp_path), *extra]
    # The service it starts runs in production, which needs the key that seals stored secrets.
    env = {**os.environ, "PARTNERS_SECRETS_KEY": Fernet.generate_key().decode()}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    output = f"stdout:\n{result.stdout[-6000:]}\nstderr:\n{result.stderr[-6000:]}"
    if result.returncode == 3:
        pytest.fail(
            "the benchmark's load generators (wrk, hey, pgbench) are missing and could not be installed "
            f"(apt-get install -y wrk hey postgresql-client):\n{output}",
            pytrace=False,
        )
    assert result.returncode == 0, output
    assert not asyncio.run(_database_exists(database)), f"the benchmark left its database {database} behind"
    reports = sorted(tmp_path.glob(f"*-{results}.json"))
    assert len(reports) == 1, output
    report: dict[str, Any] = json.loads(reports[0].read_text())
    assert report["ok"], (report["failures"], report.get("checks"))
    return report, output


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_benchmark_smoke_run_measures_every_scenario_next_to_its_baseline(tmp_path: Path) -> None:
    report, _ = _smoke(tmp_path, "run.py", "smoke", 840)

    rows = {(r["scenario"], r["kind"]): r for r in report["scenarios"]}
    skipped = {s["scenario"]: s["reason"] for s in report["skipped"]}
    assert ("health", "service") in rows
    compared = ["webhooks", "status", "mix"]
    if "directory" in skipped:
        assert "not available yet" in skipped["directory"]
    else:
        compared.append("directory")
    for scenario in compared:
        service, baseline = rows.get((scenario, "service")), rows.get((scenario, "baseline"))
        assert service is not None and baseline is not None, (scenario, sorted(rows))
        assert baseline["tool"] == "pgbench" and baseline["requests_per_s"] > 0, baseline
        assert service["requests"] > 0 and service["errors"] == 0, service
        assert service["ratios"]["requests_per_s"] > 0, service
        assert service["ratios"]["p99"] is not None, service
        assert service["peak_rss_mb_per_worker"] > 0, service
    assert rows[("status", "service-60pct")]["tool"] == "hey"
    # Webhooks: intake (202 under wrk, applier off), application (a worker draining the backlog) and the
    # accepted -> applied latency at 60 % of the drain rate; their values are not asserted.
    drained = rows.get(("webhooks", "service-apply"))
    assert drained is not None and drained["requests"] > 0 and drained["errors"] == 0, drained
    assert drained["ratios"]["requests_per_s"] is not None, drained
    latency = rows.get(("webhooks", "service-60pct"))
    assert latency is not None and latency["requests"] > 0 and latency["errors"] == 0, latency
    assert latency["p50_ms"] is not None and latency["p99_ms"] is not None, latency
    # Outbound deliveries: a backlog delivered by the workers to the benchmark's receiver (its rate divided
    # by the webhook baseline), then event -> delivered at a fixed 50 events/s; values not asserted.
    drained = rows.get(("deliveries", "service"))
    assert drained is not None and drained["tool"] == "worker", sorted(rows)
    assert drained["requests"] > 0 and drained["errors"] == 0, drained
    assert drained["ratios"]["requests_per_s"] is not None, drained
    for kind in ("service-50eps", "recorded-50eps"):  # events from API requests, and written straight
        delivered = rows.get(("deliveries", kind))
        assert delivered is not None and delivered["requests"] > 0 and delivered["errors"] == 0, (kind, delivered)
        assert delivered["p50_ms"] is not None and delivered["p99_ms"] is not None, delivered
    targets = {t["target"] for t in report["targets"]}
    assert {"webhook intake ÷ baseline req/s", "webhook application ÷ baseline req/s"} <= targets, targets
    delivery_targets = {f"delivery event->delivered p99 ms at 50/s {source}" for source in ("API", "DB")}
    assert {"deliveries ÷ baseline req/s", *delivery_targets} <= targets, targets
    for scenario in [s for s in compared if s != "mix"]:  # the service's own SQL, replayed by pgbench
        replay = rows.get((scenario, "service-sql"))
        assert replay is not None and replay["requests_per_s"] > 0 and replay["errors"] == 0, (scenario, replay)
        assert report["service_sql"][scenario]["statements"] > 0, report["service_sql"]

    checks = {c["scenario"]: c for c in report["checks"]}
    assert set(checks) == {"webhooks", "mix"}
    for check in checks.values():
        assert check["ok"], check
        assert check["answered_accepted"] > 0, check
        assert check["points_found"] == check["points_expected"] > 0, check
        assert check["money_found_minor_units"] == check["money_expected_minor_units"] > 0, check


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_payout_benchmark_smoke_run_pays_every_statement_and_renders_every_invoice(tmp_path: Path) -> None:
    """`bench/payouts.py --smoke`: seeded payees, closed quarters and approved statements, a payout run
    over them with store events sent before and while its invoices render, and the run's own checks.
    Its times are reported, never asserted."""
    report, _ = _smoke(tmp_path, "payouts.py", "payouts-smoke", 540)
    checks = {c["check"]: c for c in report["checks"]}
    assert {
        "transfers",
        "control sum",
        "statements taken",
        "SEPA file",
        "statements in payment",
        "invoice numbers",
        "documents",
        "PDF sample",
        "VAT treatments",
        "store events baseline",
        "store events during_rendering",
    } <= set(checks), sorted(checks)
    assert all(c["ok"] for c in checks.values()), checks

    seeded = report["seeded"]
    assert seeded["quarters_closed"] and seeded["approved_partners"] == report["scale"]["partners"] == 20, seeded
    assert set(seeded["treatments"]) == {"domestic", "reverse_charge", "outside_eu", "not_registered"}, seeded
    assert report["run"]["transfers"] == seeded["approved_partners"], report["run"]
    figures = report["figures"]
    assert figures["invoices"] == seeded["approved_statements"], figures
    assert figures["file_written_s"] is not None and figures["invoices_rendered_s"] is not None, figures
    assert figures["polls"] >= 1, figures
    assert {t["target"] for t in report["targets"]} == {"file_written_s", "invoices_rendered_s"}, report["targets"]
    for phase in ("baseline", "during_rendering"):  # store events: sent, all answered 202 and applied
        events = report["events"][phase]
        assert events["sent"] > 0 and events["answers"] == {"202": events["sent"]}, events
        assert events["applied"] == events["sent"] and events["not_applied"] == 0, events
        assert events["latency_p50_ms"] is not None and events["latency_p99_ms"] is not None, events


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_preview_benchmark_smoke_run_replays_every_seeded_order_under_the_draft(tmp_path: Path) -> None:
    """`bench/preview.py --smoke`: closed quarters seeded, a terms-change preview of a draft (referral rate
    and Gold threshold changed) over a window holding every seeded order, polled until done, and the
    run's own checks against the database. Its time is reported, never asserted."""
    report, _ = _smoke(tmp_path, "preview.py", "preview-smoke", 240, "--poll-seconds", "0.5")
    checks = {c["check"]: c for c in report["checks"]}
    assert {
        "orders replayed",
        "orders refused",
        "totals",
        "actual commission",
        "draft commission",
        "partners compared",
        "level moves",
    } <= set(checks), sorted(checks)
    assert all(c["ok"] for c in checks.values()), checks

    assert report["seeded"]["quarters_closed"], report["seeded"]
    figures = report["figures"]
    assert figures["orders_replayed"] == figures["orders_seeded"] == report["scale"]["orders"] == 100, figures
    assert figures["partners"] == report["scale"]["partners"] == 20, figures
    assert figures["time_to_done_s"] is not None and figures["polls"] >= 1, figures
    draft = {c["currency"]: c for c in figures["commission"]}["EUR"]
    assert draft["draft"] > draft["actual"] > 0, draft  # the referral rate went up 5 points
    assert report["progress"][-1]["status"] == "done", report["progress"]
    assert report["target"]["target"] == "time_to_done_s" and report["target"]["goal"] == 180, report["target"]
