"""CPU spent applying one accepted store event, measured in process (no HTTP, no other load).

    uv run python bench/applier.py                 # 300 events on a small seed, CPU ms per event
    uv run python bench/applier.py --profile out   # and a cProfile of the drain in out.prof / out.txt
    uv run python bench/applier.py --statements 3  # and the statements a batch of 3 events issues

It creates a database of its own (dropped at the end), migrates and seeds it as bench/run.py does,
stores N signed-order events as the intake does, then drains them with one in-process worker and
prints wall and CPU time per event. CPU time is what the applier costs whatever else the machine is
doing; the wall figure includes Postgres's own time on this machine. Use it to compare two versions
of the crediting path, not as a target (bench/run.py measures the targets against its baseline).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# Run as a script, this folder would come first on the path, and its profile.py would shadow the
# standard library's (which cProfile imports): the repository's root takes its place.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import secrets  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

from bench import seed, traffic  # noqa: E402
from bench.database import BenchDatabase  # noqa: E402


async def _accept(db: BenchDatabase, targets: list[seed.Target], count: int, now: datetime) -> None:
    from app.db.session import create_engine
    from app.domain import webhooks

    engine = create_engine(db.sqlalchemy_url)
    try:
        async with engine.begin() as conn:
            for n in range(count):
                target = targets[n % len(targets)]
                order_id = f"prof-{n}"
                body = traffic.order_event(order_id, target, now - timedelta(minutes=1))
                await webhooks.accept(conn, webhook_id=f"msg-{order_id}", body=body, now=now)
    finally:
        await engine.dispose()


async def _drain(db: BenchDatabase, batch: int, show: list[seed.Target] | None = None) -> tuple[int, float, float]:
    from app.db.session import create_engine, create_session_factory
    from app.domain.clock import SystemClock
    from app.settings import Settings
    from app.worker.runner import Worker

    settings = Settings(environment="development", database_url=db.sqlalchemy_url, worker="off", worker_batch=batch)
    engine = create_engine(db.sqlalchemy_url)
    try:
        worker = Worker(create_session_factory(engine), SystemClock(), settings, name="applier-bench")
        await worker.apply_store_events()  # warm: first statements prepared, caches filled
        wall, cpu = time.perf_counter(), time.process_time()
        done = 0
        while (n := await worker.apply_store_events()) > 0:
            done += n
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if show:
            await _show_statements(db, show, engine, worker)
        return done, wall, cpu
    finally:
        await engine.dispose()


async def _show_statements(db: BenchDatabase, targets: list[seed.Target], engine: Any, worker: Any) -> None:
    """Apply one more batch of events (one per target) and print every statement it issued."""
    from sqlalchemy import event

    from app.db.session import create_engine

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split())[:160])

    accept_engine = create_engine(db.sqlalchemy_url)
    try:
        async with accept_engine.begin() as conn:
            from app.domain import webhooks

            for n, target in enumerate(targets):
                body = traffic.order_event(f"prof-show-{n}", target, datetime.now(UTC) - timedelta(minutes=1))
                await webhooks.accept(conn, webhook_id=f"msg-prof-show-{n}", body=body, now=datetime.now(UTC))
    finally:
        await accept_engine.dispose()
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    await worker.apply_store_events()
    event.remove(engine.sync_engine, "before_cursor_execute", record)
    print(f"{len(statements)} statements for a batch of {len(targets)} event(s):")
    for n, text in enumerate(statements, 1):
        print(f"{n:3} {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="N",
        help="then print the statements a batch of N events issues (1: the one-event path)",
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the drain to PATH.prof and PATH.txt")
    args = parser.parse_args()
    db = BenchDatabase(f"bench_applier_{secrets.token_hex(4)}")
    asyncio.run(db.create())
    try:
        db.migrate()

        async def do_seed() -> seed.SeedResult:
            conn = await db.connect()
            try:
                return await seed.seed(conn, seed.SCALES["small"])
            finally:
                await conn.close()

        seeded = asyncio.run(do_seed())
        now = datetime.now(UTC)
        asyncio.run(_accept(db, seeded.targets, args.events + args.batch, now))
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        done, wall, cpu = asyncio.run(_drain(db, args.batch, seeded.targets[1 : 1 + args.statements]))
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(args.profile) + ".prof")
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(60)
            Path(str(args.profile) + ".txt").write_text(text.getvalue())
        print(f"{done} events: {wall / done * 1000:.2f} ms wall, {cpu / done * 1000:.2f} ms CPU per event")
    finally:
        asyncio.run(db.drop())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
