"""R20: partner-written text spells the vendor's name "Qalyptus" — capital Q, the rest lower case."""

from __future__ import annotations

import re

BRAND = "Qalyptus"
_ANY_CASE = re.compile(r"(?<![A-Za-z])[Qq][Aa][Ll][Yy][Pp][Tt][Uu][Ss]")


def misspellings(text: str) -> list[str]:
    """Every spelling of the name other than "Qalyptus", in order of appearance, without repeats."""
    found = [m.group(0) for m in _ANY_CASE.finditer(text) if m.group(0) != BRAND]
    return list(dict.fromkeys(found))
