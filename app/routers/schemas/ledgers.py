"""API schemas — points and money ledgers, status, levels and relationships."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.domain.rules.terms import Level
from app.routers.schemas.common import OnePage


class PartnerStatus(BaseModel):
    partner_id: uuid.UUID = Field(description="The partner's id.")
    level: Level = Field(description="The partner's level now, from its active points (R02).")
    active_points: int = Field(description="The sum of the partner's points entries (R03).")
    next_level: Level | None = Field(description="The next level up; null at Platinum.")
    points_to_next_level: int | None = Field(description="Points still needed to reach `next_level`; null at Platinum.")
    discount_rate_bp: int = Field(description="R12: resale discount now, basis points (2000 = 20 %).")
    lifetime_commission_rate_bp: int = Field(description="R13: rate on direct purchases of resale customers.")
    referral_rate_bp: int = Field(description="R11: referral commission rate, basis points (2000 = 20 %).")
    points_at_risk: int = Field(description="Points of licences whose term ends before `at_risk_until`.")
    at_risk_until: datetime = Field(
        description="The end of the window `points_at_risk` counts: now plus the terms' `points_at_risk_days`."
    )
    commission_balances: dict[str, int] = Field(description="Minor units per ISO 4217 currency.")
    terms_version: int = Field(description="The terms version in force now, which gave these rates (R21).")


class PointsEntry(BaseModel):
    id: int = Field(description="The points entry's id; entries sort by it.")
    points: int = Field(description="Points credited, or taken away when negative (R03, R10, R14).")
    effective_at: datetime = Field(
        description="When the entry counts from: an order's `placed_at`, a refund's `refunded_at`, a lapse's date "
        "(`term_end` plus grace, R10), or the moment of an adjustment."
    )
    recorded_at: datetime = Field(description="When the service recorded it.")
    rule: str = Field(description="The program rule that made it, e.g. R09.")
    explanation: str = Field(description="Why, in a sentence (R21).")
    order_id: str | None = Field(description="The store order it comes from; null when none (an adjustment).")
    order_line_id: int | None = Field(description="The order line it comes from; null when none.")
    licence_id: str | None = Field(description="The licence whose sale or lapse made it; null when none.")
    terms_version: int = Field(description="The terms version it was computed under (R21).")


class MoneyEntry(BaseModel):
    id: int = Field(description="The money entry's id; entries sort by it.")
    currency: str = Field(description="The entry's ISO 4217 currency (R15).")
    amount: int = Field(description="Minor units; negative for reversals.")
    effective_at: datetime = Field(
        description="When it counts from; its quarter, in the terms' time zone, is the statement it goes on (R16)."
    )
    recorded_at: datetime = Field(description="When the service recorded it.")
    rule: str = Field(description="The program rule that made it, e.g. R11, R13, R14.")
    explanation: str = Field(description="Why, in a sentence (R21).")
    order_id: str | None = Field(description="The store order it comes from; null for an adjustment.")
    order_line_id: int | None = Field(description="The order line it comes from; null when none.")
    rate_bp: int | None = Field(description="The rate applied to `base_amount`, basis points; null for an adjustment.")
    base_amount: int | None = Field(
        description="The amount the rate applied to, minor units, tax excluded (R23); null for an adjustment."
    )
    terms_version: int = Field(description="The terms version it was computed under (R21).")


class PointsEntryPage(BaseModel):
    items: list[PointsEntry] = Field(description="Points entries on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class MoneyEntryPage(BaseModel):
    items: list[MoneyEntry] = Field(description="Money entries on this page.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    has_more: bool = Field(description="Whether another page follows (then `next_cursor` is set).")


class LevelChange(BaseModel):
    from_level: Level = Field(description="The level before.")
    to_level: Level = Field(description="The level after.")
    points_after: int = Field(description="The partner's active points right after the change (R02, R03).")
    changed_at: datetime = Field(description="When the change took effect.")
    points_entry_id: int | None = Field(description="The entry that caused the change; null when new terms did.")
    terms_version: int | None = Field(
        default=None, description="The terms version whose taking effect caused the change (R03)."
    )


class Relationship(BaseModel):
    customer_id: uuid.UUID = Field(description="The customer.")
    company: str = Field(description="The customer's legal name.")
    mode: Literal["referral", "resale"] = Field(
        description="`referral`: the customer buys itself and the partner earns R11 commission; `resale`: the "
        "partner buys for it (R12, R13)."
    )
    first_order_at: datetime = Field(description="When the customer's first qualifying order was placed.")
    established_by_order_id: str = Field(description="The store order that established the relationship (R08).")
    resale_since: datetime | None = Field(
        description="When a resale order first made it a resale relationship; null for a referral one."
    )
    ended_at: datetime | None = Field(
        description="When it ended: the partner was terminated (R04); null while it holds."
    )


class LevelChangeList(OnePage):
    items: list[LevelChange] = Field(description="The partner's level changes, oldest first.")


class RelationshipList(OnePage):
    items: list[Relationship] = Field(description="The partner's customer relationships.")
