"""Domain events at a fixed rate, written straight to the benchmark's database with the service's own
`events.record`, each in a transaction of its own (as a request's change would commit it): the
deliveries scenario's second latency run, which loads the workers with the delivery path alone.

    PARTNERS_DATABASE_URL=postgresql+asyncpg://... python bench/event_sender.py --rate 50 --duration 10 \
        --partner <uuid> [--partner <uuid> ...]

Open loop: event n is due at start + n / rate and is written by the first of `--connections` writers
that is free then. It prints one JSON line: `{"sent": n, "duration_s": s, "late": n}` (`late`: events
written more than 100 ms after their moment). The events are `registration.created` of made-up
registrations (the subscriber checks their signature, not their content); the benchmark's database is
dropped at the end of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `app` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db.session import create_engine, create_session_factory
from app.domain import events
from bench.tools import Schedule


async def send(
    url: str, partners: list[uuid.UUID], *, rate: float, duration: float, connections: int
) -> dict[str, float]:
    engine = create_engine(url, pool_size=connections)
    factory = create_session_factory(engine)
    schedule = Schedule(max(1, int(rate * duration)), rate)

    async def writer() -> None:
        while (n := await schedule.take()) is not None:
            now = datetime.now(UTC)
            partner = partners[n % len(partners)]
            registration = uuid.uuid4()
            async with factory() as session, session.begin():
                events.record(
                    session,
                    "registration.created",
                    events.RegistrationFacts(
                        registration_id=registration,
                        partner_id=partner,
                        customer_id=uuid.uuid4(),
                        company=f"Prospect {n} SA",
                        country="FR",
                        state="live",
                        registered_at=now,
                        expires_at=now + timedelta(days=60),
                    ),
                    occurred_at=now,
                    partner_id=partner,
                    subject=f"registration:{registration}",
                )

    try:
        await asyncio.gather(*(writer() for _ in range(max(1, connections))))
    finally:
        await engine.dispose()
    return {"sent": schedule.total, "duration_s": time.monotonic() - schedule.start, "late": schedule.late}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/event_sender.py", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--connections", type=int, default=4, help="concurrent writers (default 4)")
    parser.add_argument("--partner", action="append", type=uuid.UUID, required=True, help="partner ids, in turn")
    args = parser.parse_args(argv)
    url = os.environ.get("PARTNERS_DATABASE_URL", "")
    if not url:
        print("PARTNERS_DATABASE_URL is not set", file=sys.stderr)
        return 2
    result = asyncio.run(send(url, args.partner, rate=args.rate, duration=args.duration, connections=args.connections))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
