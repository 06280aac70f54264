"""Terms-change previews: who moves and what it costs, before new terms are published.

`request` stores the draft as a preview waiting for the worker; `run` (the worker's) gathers the facts
of the program's history in reads only, decides with the pure functions of
`app.domain.rules.terms_preview` (the window's orders by `decide_order`, the applier's own), and writes
the preview's result once. Nothing of the program changes: only the preview's own rows are written. A
preview is kept a day after it finished; the one of a draft that is then published is kept with the
version (`published`), so what was expected can be read beside what happened.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import previews as repo
from app.db.session import SessionFactory, unit_of_work
from app.db.tables import TermsPreview, TermsPreviewPartner
from app.domain import terms as terms_domain
from app.domain.context import Context
from app.domain.errors import Invalid, NotFound
from app.domain.rules import terms_preview as rules
from app.domain.rules.quarters import Quarter
from app.domain.rules.terms import Level, Terms

log = logging.getLogger("app.previews")

KEPT = timedelta(days=1)
"""How long a finished preview is kept (unless its draft is published)."""
DEFAULT_QUARTERS = 4
MAX_QUARTERS = 12
PAGE = 5000
"""Orders replayed between two progress records."""


@dataclass(frozen=True)
class Window:
    first: Quarter
    last: Quarter


async def request(
    session: AsyncSession,
    ctx: Context,
    *,
    draft: Terms,
    effective_from: datetime,
    first_quarter: Quarter | None = None,
    last_quarter: Quarter | None = None,
) -> TermsPreview:
    """A preview of `draft` taking effect at `effective_from`, over the window of history (by default
    the last four closed quarters; the four before this one when none is closed), waiting for the
    worker. Past previews' day is over: they go first."""
    if effective_from <= ctx.now:
        raise Invalid(
            "Draft terms take effect in the future, as published terms do.",
            code="effective_from_not_in_future",
            field="effective_from",
        )
    base = await terms_domain.in_force(session, ctx.now)
    window = await _window(session, base.terms, ctx.now, first_quarter, last_quarter)
    await repo.delete_expired(session, ctx.now)
    document = draft.model_dump(mode="json")
    return await repo.add(
        session,
        TermsPreview(
            status="queued",
            requested_by=ctx.actor,
            created_at=ctx.now,
            expires_at=ctx.now + KEPT,
            draft=document,
            draft_digest=terms_domain.digest(document),
            effective_from=effective_from,
            base_version=base.version,
            window_start=str(window.first),
            window_end=str(window.last),
        ),
    )


async def _window(
    session: AsyncSession, base: Terms, now: datetime, first: Quarter | None, last: Quarter | None
) -> Window:
    current = Quarter.of(now, base.zone)
    if first is None and last is None:
        closed = [Quarter.parse(q) for q in await repo.closed_quarters(session)]
        last = closed[-1] if closed else current.previous()
    if last is None:
        last = current.previous()
    if first is None:
        first = last
        for _ in range(DEFAULT_QUARTERS - 1):
            first = first.previous()
    if last < first:
        raise Invalid(f"The window's last quarter {last} comes before its first {first}.", code="window_invalid")
    if current < last:
        raise Invalid(f"The window ends in {last}, after the current quarter {current}.", code="window_invalid")
    span = (last.year - first.year) * 4 + last.number - first.number + 1
    if span > MAX_QUARTERS:
        raise Invalid(f"The window holds {span} quarters; at most {MAX_QUARTERS}.", code="window_invalid")
    return Window(first, last)


async def get(session: AsyncSession, preview_id: uuid.UUID, now: datetime) -> TermsPreview:
    row = await repo.get(session, preview_id)
    if row is None or (row.expires_at <= now and row.published_version is None):
        raise NotFound(f"No terms preview {preview_id} (a preview is kept a day).", code="preview_not_found")
    return row


async def listing(
    session: AsyncSession, now: datetime, *, limit: int, before: tuple[datetime, uuid.UUID] | None
) -> list[TermsPreview]:
    rows = await repo.newest(session, limit=limit, before=before)
    return [r for r in rows if r.expires_at > now or r.published_version is not None]


async def base_terms(session: AsyncSession, row: TermsPreview) -> Terms:
    """The terms version the draft is compared with."""
    return next(v.terms for v in await terms_domain.versions(session) if v.version == row.base_version)


async def observed(session: AsyncSession, row: TermsPreview, now: datetime) -> list[tuple[str, str, int]]:
    """For published terms: the commission the ledger holds for the orders placed in each quarter from
    the effective date to now, net of refunds: what happened, beside what the preview expected."""
    zone = (await base_terms(session, row)).zone
    figures: list[tuple[str, str, int]] = []
    quarter = Quarter.of(row.effective_from, zone)
    while quarter.start(zone) <= now:
        start = max(row.effective_from, quarter.start(zone))
        for currency, amount in await repo.commission_of_orders_placed(session, start, quarter.end(zone)):
            figures.append((str(quarter), currency, int(amount or 0)))
        quarter = quarter.next()
    return figures


async def of_version(session: AsyncSession, version: int) -> TermsPreview:
    row = await repo.of_version(session, version)
    if row is None:
        raise NotFound(f"Terms version {version} was not published from a previewed draft.", code="preview_not_found")
    return row


async def partners(
    session: AsyncSession, row: TermsPreview, *, after_rank: int, limit: int | None
) -> Sequence[TermsPreviewPartner]:
    return await repo.partner_rows(session, row.id, after_rank=after_rank, limit=limit)


async def published(session: AsyncSession, version: terms_domain.TermsVersion) -> int:
    """Terms just published: the previews of the same draft are kept with them (in the publishing
    transaction)."""
    return await repo.mark_published(
        session, terms_domain.digest(version.terms.model_dump(mode="json")), version.version
    )


# --- the worker's part ------------------------------------------------------------------------------------


async def waiting(session: AsyncSession, now: datetime) -> bool:
    return await repo.any_waiting(session, now)


async def run_next(factory: SessionFactory, worker: str, now_of: Any, lease: timedelta) -> int:
    """Claim the oldest waiting preview and compute it; 1 when one was run (done or failed), else 0."""
    now = now_of()
    async with unit_of_work(factory) as session:
        row = await repo.claim(session, worker, now, now + lease)
        if row is None:
            return 0
        preview_id = row.id
    try:
        await _compute(factory, preview_id, worker, now_of, lease)
    except Exception as exc:  # a preview that cannot be computed says why; the program is untouched
        log.exception("terms preview %s failed", preview_id)
        failed_at = now_of()
        async with unit_of_work(factory) as session:
            await repo.fail(
                session,
                preview_id,
                error=f"{exc.__class__.__name__}: {exc}",
                now=failed_at,
                expires_at=failed_at + KEPT,
            )
    return 1


async def _compute(factory: SessionFactory, preview_id: uuid.UUID, worker: str, now_of: Any, lease: timedelta) -> None:
    async with factory() as session:  # reads only
        row = await repo.get(session, preview_id)
        assert row is not None
        versions = {v.version: v for v in await terms_domain.versions(session)}
        base = versions[row.base_version].terms
        draft = Terms.model_validate(row.draft)
        modelled, not_modelled = rules.changed_fields(base, draft)
        zone = base.zone
        start = Quarter.parse(row.window_start).start(zone)
        end = Quarter.parse(row.window_end).end(zone)
        total = await repo.count_window_orders(session, start, end)
        async with unit_of_work(factory) as progress:  # the count shows at once
            await repo.progress(progress, preview_id, worker, total=total, done=0, until=now_of() + lease)
        timelines: dict[uuid.UUID, list[tuple[datetime, datetime, int]]] = defaultdict(list)
        for partner_id, effective_at, recorded_at, points in await repo.points_entries_of_window_partners(
            session, start, end
        ):
            timelines[partner_id].append((effective_at, recorded_at, points))
        points = {pid: rules.PointsTimeline(entries) for pid, entries in timelines.items()}
        terms_of = {number: v.terms for number, v in versions.items()}
        replayed = rules.Replayed()
        done, after = 0, None
        while True:
            page = await repo.window_orders(session, start, end, after=after, limit=PAGE)
            if not page:
                break
            orders = await _orders(session, page)
            actual = {
                line_id: rules.ActualLine(rule or "", int(amount))
                for line_id, rule, amount in await repo.commission_of_lines(
                    session, [line.order_line_id for order in orders for line in order.lines]
                )
            }
            rules.replay(orders, actual, terms_of, draft, points, zone, replayed)
            done += len(page)
            after = (page[-1].placed_at, page[-1].order_id)
            async with unit_of_work(factory) as progress:
                moment = now_of()
                if not await repo.progress(progress, preview_id, worker, total=total, done=done, until=moment + lease):
                    return  # another worker took it over (this one was too slow): it finishes it
        facts = await _partners(session)
        standings = {fact.partner_id: rules.standing(fact, base, draft, row.effective_from) for fact in facts}
        result = rules.summary(standings, replayed, modelled, not_modelled)
        rows = _rows(standings, replayed, {fact.partner_id: fact.company for fact in facts})
        finished = now_of()
        result["orders_replayed"] = done
    async with unit_of_work(factory) as session:
        await repo.finish(
            session, preview_id, worker, result=result, rows=rows, now=finished, expires_at=finished + KEPT
        )


async def _orders(session: AsyncSession, page: Sequence[Any]) -> list[rules.OrderFact]:
    lines: dict[str, list[rules.LineFact]] = defaultdict(list)
    for order_id, line_pk, *fields in await repo.lines_of(session, [o.order_id for o in page]):
        line_id, sku, quantity, kind, licence_id, term_end, listed, discount, tax, paid, refunded = fields
        lines[order_id].append(
            rules.LineFact(
                line_id, line_pk, sku, quantity, kind, licence_id, term_end, listed, discount, tax, paid, refunded
            )
        )
    return [
        rules.OrderFact(
            order_id=o.order_id,
            placed_at=o.placed_at,
            recorded_at=o.recorded_at,
            currency=o.currency,
            partner_id=o.partner_id,
            mode=o.mode or "referral",
            terms_version=o.terms_version,
            first_order_at=(
                o.first_order_at
                if o.first_order_at is not None and o.relationship_partner_id == o.partner_id
                else o.placed_at
            ),
            lines=tuple(lines[o.order_id]),
        )
        for o in page
    ]


async def _partners(session: AsyncSession) -> list[rules.PartnerFact]:
    licences: dict[uuid.UUID, list[rules.LicenceFact]] = defaultdict(list)
    for partner_id, licence_id, sku, quantity, term_end, standing in await repo.active_licences_with_standing(session):
        licences[partner_id].append(rules.LicenceFact(licence_id, sku, quantity, term_end, int(standing)))
    return [
        rules.PartnerFact(
            partner_id=pid,
            company=company,
            points=int(points or 0),
            level=Level(level or Level.AFFILIATE.value),
            licences=tuple(licences.get(pid, ())),
        )
        for pid, company, points, level in await repo.partners_with_balances(session)
    ]


def _rows(
    standings: dict[uuid.UUID, rules.Standing], replayed: rules.Replayed, names: dict[uuid.UUID, str]
) -> list[dict[str, Any]]:
    def commission_of(pid: uuid.UUID) -> dict[str, dict[str, int]]:
        return {c: dict(f) for c, f in sorted(replayed.by_partner.get(pid, {}).items())}

    ordered = sorted(
        standings.items(),
        key=lambda item: (*(-x for x in rules.impact(item[1], commission_of(item[0]))), names.get(item[0], "")),
    )
    return [
        {
            "partner_id": pid,
            "impact_rank": rank,
            "company": names.get(pid, "")[:200],
            "points_now": s.points_now,
            "points_lapsing": s.points_lapsing,
            "points_recount": s.points_recount,
            "level_now": s.level_now.value,
            "level_current_terms": s.level_current_terms.value,
            "level_draft": s.level_draft.value,
            "level_recount": s.level_recount.value,
            "discount_bp_now": s.discount_bp_now,
            "discount_bp_draft": s.discount_bp_draft,
            "commission": commission_of(pid),
        }
        for rank, (pid, s) in enumerate(ordered, start=1)
    ]
