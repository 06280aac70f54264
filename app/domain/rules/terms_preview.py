"""A terms-change preview, decided: what draft terms would do to each partner and to the program,
as pure functions of facts read about the program (R01-R03, R10-R14).

No session, no clock, no I/O: `app.domain.terms_preview` gathers the facts and writes the result.
The window's orders are replayed by `decide_order`, the function the applier decides every order
with, under the terms each order was placed under with the draft's modelled fields put in.
"""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.domain.rules import crediting
from app.domain.rules import order_decision as decisions
from app.domain.rules.money import refund_commission_target
from app.domain.rules.names import Rule
from app.domain.rules.quarters import Quarter
from app.domain.rules.terms import LEVEL_ORDER, Level, Terms
from app.domain.store_events import Buyer, OrderPaidData, StoreCustomer, StoreOrderLine

MODELLED = {
    "points_per_sku": "points table (R01)",
    "levels": "level thresholds, discounts and lifetime commission rates (R02, R12, R13)",
    "referral_rate_bp": "referral commission rate (R11)",
    "referral_window_months": "referral commission window (R11)",
}
"""The fields of the terms a preview models, and what each is in the program's words."""

COMMISSION_RULES = frozenset({Rule.REFERRAL_COMMISSION.value, Rule.LIFETIME_COMMISSION.value})


def changed_fields(base: Terms, draft: Terms) -> tuple[list[str], list[str]]:
    """The draft's changes against the terms in force: those the preview models, and the others."""
    before, after = base.model_dump(mode="json"), draft.model_dump(mode="json")
    changed = sorted(name for name in after if before.get(name) != after[name])
    return [n for n in changed if n in MODELLED], [n for n in changed if n not in MODELLED]


def replay_terms(placed_under: Terms, draft: Terms) -> Terms:
    """The terms an order is replayed under: those it was placed under, with the draft's modelled
    fields (what the preview does not model stays as it was)."""
    return placed_under.model_copy(update={name: getattr(draft, name) for name in MODELLED})


# --- facts ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineFact:
    line_id: str
    order_line_id: int
    sku: str
    quantity: int
    kind: str
    licence_id: str | None
    term_end: datetime | None
    list_amount: int
    discount_amount: int
    tax_amount: int
    paid_amount: int
    refunded_amount: int


@dataclass(frozen=True)
class OrderFact:
    """A credited order of a customer buying itself, as it was recorded."""

    order_id: str
    placed_at: datetime
    recorded_at: datetime
    currency: str
    partner_id: uuid.UUID
    mode: str
    terms_version: int
    first_order_at: datetime
    """The first order of the customer's relationship with the partner (R11's window starts there)."""
    lines: tuple[LineFact, ...]


@dataclass(frozen=True)
class ActualLine:
    """What the money ledger holds for a line: its commission credit's rule, and the sum of its
    entries (credits less refund reversals)."""

    rule: str
    amount: int


class PointsTimeline:
    """A partner's points entries by effective moment, with when each was recorded: the points
    effective before a moment as the service knew them when it decided an order (R03a)."""

    def __init__(self, entries: Iterable[tuple[datetime, datetime, int]]) -> None:
        self._entries = sorted(entries)

    def before(self, at: datetime, known_by: datetime) -> int:
        end = bisect.bisect_left(self._entries, (at,))
        return sum(points for _, recorded, points in self._entries[:end] if recorded <= known_by)


@dataclass(frozen=True)
class LicenceFact:
    licence_id: str
    sku: str
    quantity: int
    term_end: datetime | None
    standing: int
    """The points standing for it: what its lapse would take away (R10)."""


@dataclass(frozen=True)
class PartnerFact:
    partner_id: uuid.UUID
    company: str
    points: int
    level: Level
    licences: tuple[LicenceFact, ...] = ()


# --- decisions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """A partner's level and discount now and at the draft's effective date."""

    points_now: int
    points_lapsing: int
    points_recount: int
    level_now: Level
    level_current_terms: Level
    level_draft: Level
    level_recount: Level
    discount_bp_now: int
    discount_bp_draft: int


def standing(partner: PartnerFact, base: Terms, draft: Terms, effective_from: datetime) -> Standing:
    """R01-R03, R10, R12: the partner's points now, less those of licences that lapse before the
    effective date (term end plus the grace of the terms in force), under the draft's thresholds;
    publishing never recounts past points. Apart, what a recount of the remaining active licences under
    the draft's points table would give."""
    grace = timedelta(days=base.lapse_grace_days)
    lapsing = [lic for lic in partner.licences if lic.term_end is not None and lic.term_end + grace < effective_from]
    staying = [lic for lic in partner.licences if lic not in lapsing]
    after = partner.points - sum(lic.standing for lic in lapsing)
    recount = after + sum(lic.quantity * draft.points_per_sku.get(lic.sku, 0) - lic.standing for lic in staying)
    level_draft = draft.level_for(after)
    return Standing(
        points_now=partner.points,
        points_lapsing=partner.points - after,
        points_recount=recount,
        level_now=partner.level,
        level_current_terms=base.level_for(after),
        level_draft=level_draft,
        level_recount=draft.level_for(recount),
        discount_bp_now=base.resale_rate_bp(partner.level),
        discount_bp_draft=draft.resale_rate_bp(level_draft),
    )


@dataclass
class Replayed:
    """The window's commission, actual and under the draft: per partner and currency, and per quarter,
    kind and currency."""

    by_partner: dict[uuid.UUID, dict[str, dict[str, int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: {"actual": 0, "draft": 0}))
    )
    by_quarter: dict[tuple[str, str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: {"actual": 0, "draft": 0})
    )
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Orders the draft cannot decide (a SKU it lacks), by the reason's code: they earn nothing under it."""


def replay(
    orders: Sequence[OrderFact],
    actual: Mapping[int, ActualLine],
    terms_of: Mapping[int, Terms],
    draft: Terms,
    timelines: Mapping[uuid.UUID, PointsTimeline],
    zone: Any,
    into: Replayed,
) -> None:
    """Each order decided again by `decide_order` under the terms it was placed under with the draft's
    modelled fields, at the level the draft's thresholds give the partner's points before it (R03a);
    each line's commission net of its refunds as R14 reverses it, beside what the ledger holds."""
    replayed_under = {version: replay_terms(terms, draft) for version, terms in terms_of.items()}
    for order in orders:
        quarter = str(Quarter.of(order.placed_at, zone))
        terms = replayed_under[order.terms_version]
        timeline = timelines.get(order.partner_id)
        points_before = timeline.before(order.placed_at, order.recorded_at) if timeline else 0
        decided = decisions.decide_order(_data(order), _facts(order, terms, points_before))
        if isinstance(decided, decisions.Refusal):
            into.refused[decided.code] += 1
            credits: list[crediting.Credit | None] = [None] * len(order.lines)
        else:
            credits = [line.commission for line in decided.lines]
        for line, credit in zip(order.lines, credits, strict=True):
            had = actual.get(line.order_line_id)
            draft_amount = 0
            if credit is not None:
                draft_amount = credit.amount - refund_commission_target(
                    credit.amount, line.refunded_amount, line.paid_amount
                )
            if had is None and draft_amount == 0:
                continue
            kind = had.rule if had is not None else credit.rule.value if credit is not None else ""
            figures = into.by_partner[order.partner_id][order.currency]
            figures["actual"] += had.amount if had else 0
            figures["draft"] += draft_amount
            bucket = into.by_quarter[(quarter, kind, order.currency)]
            bucket["actual"] += had.amount if had else 0
            bucket["draft"] += draft_amount


def _data(order: OrderFact) -> OrderPaidData:
    """The order as the store delivered it, built without validation (it was validated on arrival)."""
    return OrderPaidData.model_construct(
        order_id=order.order_id,
        placed_at=order.placed_at,
        currency=order.currency,
        buyer=Buyer.model_construct(type="customer", partner_id=None),
        customer=StoreCustomer.model_construct(company="", country=""),
        lines=[
            StoreOrderLine.model_construct(
                line_id=line.line_id,
                sku=line.sku,
                quantity=line.quantity,
                kind=line.kind,  # type: ignore[arg-type] # as recorded: new or renewal
                licence_id=line.licence_id,
                term_end=line.term_end,
                list_amount=line.list_amount,
                discount_amount=line.discount_amount,
                tax_amount=line.tax_amount,
                paid_amount=line.paid_amount,
            )
            for line in order.lines
        ],
    )


def _facts(order: OrderFact, terms: Terms, points_before: int) -> decisions.OrderFacts:
    """What the applier knew of the order, as recorded: its partner held the customer in `mode` since
    the relationship's first order, and could earn (the order was credited)."""
    relationship = crediting.RelationshipFact(order.partner_id, order.mode, order.first_order_at, None)
    return decisions.OrderFacts(
        now=order.placed_at,
        terms_version=order.terms_version,
        terms=terms,
        customers_matched=1,
        customer=crediting.CustomerFacts(
            first_purchase_at=order.first_order_at, relationship=relationship, registrations=()
        ),
        eligible=True,
        points_before=points_before,
    )


# --- the answer -----------------------------------------------------------------------------------------


def impact(standing_: Standing, commission: Mapping[str, Mapping[str, int]]) -> tuple[int, int]:
    """How much the draft affects a partner, largest first: a level move (by its size), then the
    largest difference in commission in any currency."""
    move = abs(LEVEL_ORDER.index(standing_.level_draft) - LEVEL_ORDER.index(standing_.level_now))
    difference = max((abs(f["draft"] - f["actual"]) for f in commission.values()), default=0)
    return move, difference


def summary(
    standings: Mapping[uuid.UUID, Standing],
    replayed: Replayed,
    modelled: list[str],
    not_modelled: list[str],
) -> dict[str, Any]:
    """The program-wide answer: moves, discounts, commission by quarter and kind, totals per level."""
    promotions = sum(1 for s in standings.values() if _rank(s.level_draft) > _rank(s.level_now))
    demotions = sum(1 for s in standings.values() if _rank(s.level_draft) < _rank(s.level_now))
    levels: dict[str, dict[str, Any]] = {
        level.value: {"partners_now": 0, "partners_draft": 0, "commission": {}} for level in LEVEL_ORDER
    }
    for partner_id, s in standings.items():
        levels[s.level_now.value]["partners_now"] += 1
        levels[s.level_draft.value]["partners_draft"] += 1
        for currency, figures in replayed.by_partner.get(partner_id, {}).items():
            total = levels[s.level_now.value]["commission"].setdefault(currency, {"actual": 0, "draft": 0})
            total["actual"] += figures["actual"]
            total["draft"] += figures["draft"]
    totals: dict[str, dict[str, int]] = {}
    for (_, _, currency), figures in replayed.by_quarter.items():
        total = totals.setdefault(currency, {"actual": 0, "draft": 0})
        total["actual"] += figures["actual"]
        total["draft"] += figures["draft"]
    return {
        "modelled": [{"field": name, "what": MODELLED[name]} for name in modelled],
        "not_modelled": not_modelled,
        "partners": len(standings),
        "promotions": promotions,
        "demotions": demotions,
        "discounts_lowered": sum(1 for s in standings.values() if s.discount_bp_draft < s.discount_bp_now),
        "discounts_raised": sum(1 for s in standings.values() if s.discount_bp_draft > s.discount_bp_now),
        "commission": [{"currency": c, **f, "difference": f["draft"] - f["actual"]} for c, f in sorted(totals.items())],
        "by_quarter": [
            {"quarter": q, "kind": k, "currency": c, **f, "difference": f["draft"] - f["actual"]}
            for (q, k, c), f in sorted(replayed.by_quarter.items())
        ],
        "by_level": [
            {
                "level": name,
                "partners_now": figures["partners_now"],
                "partners_draft": figures["partners_draft"],
                "commission": [
                    {"currency": c, **f, "difference": f["draft"] - f["actual"]}
                    for c, f in sorted(figures["commission"].items())
                ],
            }
            for name, figures in levels.items()
        ],
        "orders_refused": dict(sorted(replayed.refused.items())),
    }


def _rank(level: Level) -> int:
    return LEVEL_ORDER.index(level)
