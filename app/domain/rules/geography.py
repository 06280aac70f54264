"""Continents of ISO 3166-1 countries, and great-circle distance, for routing leads (R19)."""

from __future__ import annotations

import math

_CONTINENTS = {
    "AF": "DZ AO BJ BW BF BI CV CM CF TD KM CG CD CI DJ EG GQ ER SZ ET GA GM GH GN GW KE LS LR LY MG MW ML MR MU YT "
    "MA MZ NA NE NG RE RW SH ST SN SC SL SO ZA SS SD TZ TG TN UG EH ZM ZW",
    "AS": "AF AM AZ BH BD BT BN KH CN CY GE HK IN ID IR IQ IL JP JO KZ KW KG LA LB MO MY MV MN MM NP KP OM PK PS PH QA "
    "SA SG KR LK SY TW TJ TH TL TR TM AE UZ VN YE IO CC CX",
    "EU": "AX AL AD AT BY BE BA BG HR CZ DK EE FO FI FR DE GI GR GG HU IS IE IM IT JE XK LV LI LT LU MT MD MC ME NL MK "
    "NO PL PT RO RU SM RS SK SI ES SJ SE CH UA GB VA",
    "NA": "AI AG AW BS BB BZ BM BQ VG CA KY CR CU CW DM DO SV GL GD GP GT HT HN JM MQ MX MS NI PA PR BL KN LC MF PM VC "
    "SX TT TC US VI UM",
    "SA": "AR BO BR CL CO EC FK GF GY PY PE SR UY VE GS BV",
    "OC": "AS AU CK FJ PF GU KI MH FM NR NC NZ NU NF MP PW PG PN WS SB TK TO TV VU WF HM",
    "AN": "AQ TF",
}
CONTINENT_OF = {country: continent for continent, codes in _CONTINENTS.items() for country in codes.split()}


def continent(country: str) -> str | None:
    return CONTINENT_OF.get(country.upper())


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, h)))
