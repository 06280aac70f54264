"""API schemas — terms-change previews: draft terms replayed over the program's history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.domain.rules.terms import POLICY_TERMS, Level, Terms
from app.routers.fields import UtcDatetime
from app.routers.schemas.common import RequestModel, request_examples
from app.routers.schemas.statements import QuarterName


class TermsPreviewRequest(RequestModel):
    model_config = request_examples(
        {
            "effective_from": "2030-01-01T00:00:00Z",
            "terms": POLICY_TERMS.model_copy(update={"referral_rate_bp": 2500}).model_dump(mode="json"),
        }
    )

    effective_from: UtcDatetime = Field(description="The future moment the draft would take effect at.")
    terms: Terms = Field(description="The draft: the same document `POST /v1/program/terms` publishes.")
    first_quarter: QuarterName | None = Field(
        default=None,
        description="The first quarter of history to replay, e.g. `2025-Q4`; by default the window is the last four "
        "closed quarters (the four before the current one when none is closed).",
    )
    last_quarter: QuarterName | None = Field(
        default=None,
        description="The last quarter of history to replay, e.g. `2026-Q3`; at most the current quarter, and the "
        "window at most 12 quarters.",
    )


class ModelledField(BaseModel):
    field: str = Field(description="A field of the terms the preview models, e.g. `referral_rate_bp`.")
    what: str = Field(description="What it is, in the program's words.")


class Figures(BaseModel):
    currency: str = Field(description="ISO 4217 code.")
    actual: int = Field(description="What the ledger holds, minor units.")
    draft: int = Field(description="What the draft would have given, minor units.")
    difference: int = Field(description="`draft` less `actual`.")


class QuarterFigures(Figures):
    quarter: str = Field(description="The quarter the orders were placed in, e.g. `2026-Q1`.")
    kind: str = Field(description="The rule of the commission: `R11` referral, `R13` lifetime.")


class LevelFigures(BaseModel):
    level: Level = Field(description="A level of the program.")
    partners_now: int = Field(description="Partners at it now.")
    partners_draft: int = Field(description="Partners the draft puts at it at its effective date.")
    commission: list[Figures] = Field(description="The window's commission of the partners at it now, per currency.")


class PreviewPartner(BaseModel):
    partner_id: uuid.UUID = Field(description="The partner.")
    company: str = Field(description="Its company name.")
    impact_rank: int = Field(
        description="1 for the partner the draft affects most: a level move first, then the "
        "largest difference in commission."
    )
    points_now: int = Field(description="Its active points now.")
    points_lapsing: int = Field(description="Points of its licences that lapse before the effective date (R10).")
    points_at_effective_date: int = Field(
        description="`points_now` less `points_lapsing`: past points are never recounted by new terms (R01, R03)."
    )
    points_recount: int = Field(
        description="Shown apart: its points if the draft's points table were applied to "
        "every licence still active then."
    )
    level_now: Level = Field(description="Its level now.")
    level_current_terms: Level = Field(
        description="Its level at the effective date under the terms in force (the lapses alone)."
    )
    level_draft: Level = Field(description="Its level at the effective date under the draft's thresholds.")
    level_recount: Level = Field(description="The level `points_recount` would give under the draft.")
    discount_bp_now: int = Field(description="Its reseller discount now (R12), basis points.")
    discount_bp_draft: int = Field(description="Its reseller discount under the draft at the effective date.")
    commission: list[Figures] = Field(description="The window's commission, actual and under the draft, per currency.")


class PreviewResult(BaseModel):
    partners: int = Field(description="Partners compared (every partner not waiting for approval).")
    promotions: int = Field(description="Partners the draft puts at a higher level than now.")
    demotions: int = Field(description="Partners the draft puts at a lower level than now.")
    discounts_lowered: int = Field(description="Resellers whose discount the draft lowers.")
    discounts_raised: int = Field(description="Resellers whose discount the draft raises.")
    orders_replayed: int = Field(description="The window's credited orders replayed under the draft.")
    orders_refused: dict[str, int] = Field(
        description="Orders the draft cannot decide, by reason (e.g. `unknown_sku`): they earn nothing under it."
    )
    commission: list[Figures] = Field(description="The window's commission, in total, per currency.")
    by_quarter: list[QuarterFigures] = Field(description="The window's commission per quarter, kind and currency.")
    by_level: list[LevelFigures] = Field(description="Partners and commission per level.")
    most_affected: list[PreviewPartner] = Field(description="The ten partners the draft affects most.")


class PreviewProgress(BaseModel):
    orders_total: int = Field(description="The window's credited orders to replay (known once started).")
    orders_done: int = Field(description="Those replayed so far.")


class ObservedFigures(BaseModel):
    quarter: str = Field(description="A quarter from the effective date on.")
    currency: str = Field(description="ISO 4217 code.")
    amount: int = Field(description="Commission the ledger holds for the orders placed in it, net of refunds.")


class TermsPreview(BaseModel):
    id: uuid.UUID = Field(description="The preview.")
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="`queued`, `running` (see `progress`), `done` (see `result`) or `failed` (see `error`)."
    )
    url: str = Field(description="Where to poll it.")
    partners_url: str = Field(description="Its per-partner table, most affected first (also as CSV: `.csv`).")
    created_at: datetime = Field(description="When it was asked for.")
    started_at: datetime | None = Field(description="When a worker started it.")
    finished_at: datetime | None = Field(description="When it finished.")
    expires_at: datetime | None = Field(
        description="When it is deleted (a day after it finished); null when it is kept with the version published "
        "from its draft."
    )
    effective_from: datetime = Field(description="When the draft would take effect.")
    base_version: int = Field(description="The terms version in force when it was asked: the draft's comparison.")
    first_quarter: str = Field(description="The first quarter of history replayed.")
    last_quarter: str = Field(description="The last quarter of history replayed.")
    modelled: list[ModelledField] = Field(description="The draft's changes the preview models.")
    not_modelled: list[str] = Field(
        description="The draft's other changes (fields of the terms): the preview does not show their effect."
    )
    progress: PreviewProgress = Field(description="How far it is.")
    result: PreviewResult | None = Field(description="Once done: who moves and what it costs.")
    error: str | None = Field(description="Why it failed.")
    published_version: int | None = Field(description="The terms version published from this draft, if any.")
    observed: list[ObservedFigures] | None = Field(
        default=None,
        description="For the preview of published terms: the commission the ledger holds per quarter from the "
        "effective date on, to read beside `result.by_quarter` (what was expected).",
    )


class PreviewPartnerPage(BaseModel):
    items: list[PreviewPartner] = Field(description="Partners, most affected first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether more partners follow.")


class TermsPreviewPage(BaseModel):
    items: list[TermsPreview] = Field(description="Previews, newest first (the kept ones included).")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether more previews follow.")
