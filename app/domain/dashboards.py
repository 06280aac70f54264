"""The program overview the vendor's internal dashboards read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import dashboards as repo
from app.db.repositories import order_flags as flags_repo
from app.domain import program as program_domain
from app.domain import statements, terms
from app.domain.rules.quarters import Quarter


@dataclass(frozen=True)
class Overview:
    partners_by_level: dict[str, int]
    partners_by_status: dict[str, int]
    points_distribution: list[tuple[str, int]]
    commissions: list[dict[str, Any]]
    registrations_by_state: dict[str, int]
    refusals_by_reason: dict[str, int]
    parked_webhook_events: dict[str, int]
    discount_mismatches: int
    order_flags: dict[str, int]
    overdue_statements: int
    overdue_quarters: int
    top_partners_by_points: list[dict[str, Any]]
    top_partners_by_commission: list[dict[str, Any]]
    authentication_refusals: dict[str, int]


async def overview(
    session: AsyncSession, *, now: datetime, start: datetime | None, end: datetime | None, top: int = 10
) -> Overview:
    """Every figure of the program, filtered by date range where a figure has a date."""
    program = (await terms.in_force(session, now)).terms
    zone = program.zone
    quarters = None
    if start is not None or end is not None:
        first = str(Quarter.of(start, zone)) if start else "0000-Q1"
        last = str(Quarter.of(end, zone)) if end else "9999-Q4"
        quarters = (first, last)
    thresholds = [t.min_points for t in program.levels]
    buckets: list[tuple[str, int, int | None]] = [("0", 0, 0)]
    for index, low in enumerate(thresholds[1:], start=1):
        high = thresholds[index + 1] - 1 if index + 1 < len(thresholds) else None
        buckets.append((f"{low}-{high}" if high is not None else f"{low}+", low, high))
    distribution = await repo.points_distribution(session, buckets)
    accrued = await repo.accrued(session, quarters)
    totals = await repo.statement_totals(session, quarters)
    keys = sorted(set(accrued) | {(q, c) for q, c, _ in totals})
    commissions = [
        {
            "quarter": q,
            "currency": c,
            "accrued": accrued.get((q, c), 0),
            "payable": totals.get((q, c, "approved"), 0),
            "due": totals.get((q, c, "approved"), 0),
            "in_payment": totals.get((q, c, "in_payment"), 0),
            "paid": totals.get((q, c, "paid"), 0),
        }
        for q, c in keys
    ]
    return Overview(
        partners_by_level=await repo.active_partners_by_level(session),
        partners_by_status=await repo.partners_by_status(session, start, end),
        points_distribution=[
            *([("negative", distribution["negative"])] if distribution.get("negative") else []),
            *((name, distribution.get(name, 0)) for name, _, _ in buckets),
        ],
        commissions=commissions,
        registrations_by_state=await repo.registrations_by_state(session, now, start, end),
        refusals_by_reason=await repo.refusals_by_reason(session, start, end),
        parked_webhook_events=await repo.parked_events(session, start, end),
        discount_mismatches=await repo.mismatch_count(session, start, end),
        order_flags=await flags_repo.open_by_kind(session, start, end),
        overdue_statements=await statements.overdue_count(session, now),
        overdue_quarters=len({q.quarter for q in await statements.overdue_quarters(session, now)}),
        top_partners_by_points=[
            {"partner_id": p, "company": c, "value": v} for p, c, v in await repo.top_by_points(session, top)
        ],
        top_partners_by_commission=[
            {"partner_id": p, "company": c, "value": v, "currency": cur}
            for p, c, v, cur in await repo.top_by_commission(session, top)
        ],
        authentication_refusals=await program_domain.authentication_refusals(session, now),
    )
