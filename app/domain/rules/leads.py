"""R19: ranking partners for an inbound lead, with the reason for each place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.domain.rules.geography import continent, distance_km
from app.domain.rules.terms import LEVEL_ORDER, Level


@dataclass(frozen=True)
class Prospect:
    country: str
    region: str | None
    coordinates: tuple[float, float] | None


@dataclass(frozen=True)
class Candidate:
    partner_id: uuid.UUID
    name: str
    country: str
    regions: tuple[str, ...]
    """The partner's own region and the regions it serves, lower case."""
    level: Level
    open_leads: int
    coordinates: tuple[float, float] | None


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    tier: int
    distance_km: float | None
    reason: str


TIERS = {0: "same country and region", 1: "same country", 2: "same continent", 3: "elsewhere"}


def rank(prospect: Prospect, candidates: list[Candidate]) -> list[Ranked]:
    """Same country (its region first), then same continent, then elsewhere; within a tier higher
    level first, then fewest open leads, then nearest when coordinates are known."""
    ranked = []
    for c in candidates:
        if c.country == prospect.country:
            tier = 0 if prospect.region and prospect.region.lower() in c.regions else 1
        elif continent(c.country) is not None and continent(c.country) == continent(prospect.country):
            tier = 2
        else:
            tier = 3
        km = distance_km(prospect.coordinates, c.coordinates) if prospect.coordinates and c.coordinates else None
        reason = f"{TIERS[tier]}; {c.level.value}; {c.open_leads} open lead(s)"
        if km is not None:
            reason += f"; {km:.0f} km away"
        ranked.append(Ranked(c, tier, km, reason))
    ranked.sort(
        key=lambda r: (
            r.tier,
            -LEVEL_ORDER.index(r.candidate.level),
            r.candidate.open_leads,
            r.distance_km if r.distance_km is not None else float("inf"),
            r.candidate.name.lower(),
        )
    )
    return ranked
