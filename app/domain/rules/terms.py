"""Program terms (R01, R02, R21): the numbers of the program, versioned with an effective date.

Rates are basis points (2000 = 20 %) so no float ever touches money.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from app.domain.rules.numbers import WHOLE, WholeInt


class Level(StrEnum):
    AFFILIATE = "affiliate"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


LEVEL_ORDER = [Level.AFFILIATE, Level.SILVER, Level.GOLD, Level.PLATINUM]


SkuName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
SkuPoints = Annotated[int, Field(strict=True, ge=0, le=10_000), WHOLE]
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$"


class LevelTerm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Level = Field(
        description="The level these numbers are for; `levels` lists affiliate, silver, gold, platinum."
    )
    min_points: WholeInt = Field(
        ge=0,
        le=10_000_000,
        description="R02: the active points from which a partner is at this level; 0 for affiliate, then strictly "
        "increasing.",
    )
    rate_bp: WholeInt = Field(ge=0, le=10_000, description="Discount and lifetime-commission rate, basis points.")


def _levels_in_order(schema: dict[str, Any]) -> None:
    """The JSON Schema of `Terms.levels`: each position holds its level (`prefixItems`), Affiliate at 0
    points and the others above 0. That each threshold is above the previous one cannot be said in JSON
    Schema: the description says it, and `Terms` checks it."""
    item = schema["items"]
    schema["prefixItems"] = [
        {
            "allOf": [dict(item)],
            "properties": {
                "level": {"const": level.value, "description": f"Position {index + 1} is always {level.value}."},
                "min_points": (
                    {"const": 0, "description": "Affiliate starts at 0 points."}
                    if index == 0
                    else {"minimum": index, "description": "Above the threshold of the level before."}
                ),
            },
        }
        for index, level in enumerate(LEVEL_ORDER)
    ]


class Terms(BaseModel):
    """The program's numbers. Every order is evaluated under the version in force at its `placed_at`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    points_per_sku: dict[SkuName, SkuPoints] = Field(
        description="R01: points per licence of each SKU.", json_schema_extra={"additionalProperties": False}
    )
    levels: list[LevelTerm] = Field(
        min_length=4,
        max_length=4,
        description="R02: thresholds and rates of the four levels, Affiliate, Silver, Gold and Platinum in that "
        "order; Affiliate starts at 0 points and each next `min_points` is strictly higher than the one before.",
        json_schema_extra=_levels_in_order,
    )
    referral_rate_bp: WholeInt = Field(ge=0, le=10_000, description="R11: referral commission rate.")
    registration_window_days: WholeInt = Field(ge=1, le=3650, description="R07: how long a registration is valid.")
    registration_cooloff_days: WholeInt = Field(ge=0, le=3650, description="R06: wait before re-registering.")
    referral_window_months: WholeInt = Field(ge=1, le=120, description="R11: commission window after the first order.")
    lapse_grace_days: WholeInt = Field(ge=0, le=365, description="R10: a licence lapses at term end plus this.")
    hold_days: WholeInt = Field(ge=0, le=365, description="R16: hold before a commission is payable.")
    time_zone: str = Field(
        max_length=64,
        pattern=TIME_ZONE_PATTERN,
        description="IANA name; quarters and the referral window are counted in it.",
        examples=["Europe/Paris"],
    )
    points_at_risk_days: WholeInt = Field(default=60, ge=1, le=3650, description="Status: licences ending within this.")
    nfr_licences_per_product: WholeInt = Field(default=1, ge=0, le=100, description="R17: free licences per SKU.")
    lead_offer_days: WholeInt = Field(default=5, ge=1, le=60, description="R19: days to accept an offered lead.")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone") from exc
        return value

    @model_validator(mode="after")
    def _levels(self) -> Terms:
        if [t.level for t in self.levels] != LEVEL_ORDER:
            raise ValueError("levels must list affiliate, silver, gold, platinum in that order")
        if self.levels[0].min_points != 0:
            raise ValueError("affiliate starts at 0 points")
        thresholds = [t.min_points for t in self.levels]
        if thresholds != sorted(set(thresholds)):
            raise ValueError("level thresholds must strictly increase")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def level_for(self, points: int) -> Level:
        """R02: the level active points give."""
        level = Level.AFFILIATE
        for term in self.levels:
            if points >= term.min_points:
                level = term.level
        return level

    def rate_bp(self, level: Level) -> int:
        return next(t.rate_bp for t in self.levels if t.level == level)

    def resale_rate_bp(self, level: Level) -> int:
        """R12: a partner at Affiliate level buying for resale gets the Silver rate."""
        return self.rate_bp(Level.SILVER if level == Level.AFFILIATE else level)

    def next_level(self, points: int) -> LevelTerm | None:
        return next((t for t in self.levels if t.min_points > points), None)


POLICY_TERMS = Terms(
    points_per_sku={
        "desktop": 1,
        "server-business": 4,
        "server-enterprise": 5,
        "creator": 1,
        "cloud-business": 4,
        "cloud-enterprise": 5,
    },
    levels=[
        LevelTerm(level=Level.AFFILIATE, min_points=0, rate_bp=0),
        LevelTerm(level=Level.SILVER, min_points=1, rate_bp=2000),
        LevelTerm(level=Level.GOLD, min_points=160, rate_bp=2500),
        LevelTerm(level=Level.PLATINUM, min_points=265, rate_bp=3000),
    ],
    referral_rate_bp=2000,
    registration_window_days=60,
    registration_cooloff_days=60,
    referral_window_months=12,
    lapse_grace_days=0,
    hold_days=0,
    time_zone="UTC",
)
"""The values of the vendor's published policy, seeded as terms version 1."""
