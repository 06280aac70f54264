"""Validated input types shared by the API schemas.

Every string that reaches the database goes through one of these: bounded in length and free
of control characters (Postgres refuses NUL bytes, and nobody means to send them). Each type's
JSON Schema says what the server checks (its `pattern`, bounds and formats), so that a client,
or a fuzzer, reading the OpenAPI document knows which values the server takes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import pycountry
from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints, WithJsonSchema

from app.domain.clock import supported

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""The characters `str.strip()` removes (`str.isspace()`), as the body of a regex class: written out,
because `\\s` means other sets in Python, Rust and ECMA-262 regexes."""
_VISIBLE = r"[^\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
"""One character that is neither white space nor a control character."""


def _nonblank(allowed: str) -> str:
    """A pattern for text of `allowed` characters with at least one that is not white space."""
    return f"^{allowed}*{_VISIBLE}{allowed}*$"


TEXT = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
"""One character of multi-line text: no control character but tab, line feed and carriage return."""
LINE = r"[^\x00-\x08\x0a-\x1f\x7f]"
"""One character of a single line: no control character but tab."""
TEXT_PATTERN = f"^{TEXT}*$"
LINE_PATTERN = f"^{LINE}*$"
NONBLANK_TEXT_PATTERN = _nonblank(TEXT)
NONBLANK_LINE_PATTERN = _nonblank(LINE)


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def strip(value: str) -> str:
    """Surrounding white space is dropped after the length was checked on the value as sent, so the
    server never accepts a longer value than the OpenAPI document allows."""
    return value.strip()


def strip_nonblank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value


Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NONBLANK_LINE_PATTERN),
    AfterValidator(strip_nonblank),
    AfterValidator(_no_control),
    AfterValidator(_one_line),
]
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1000, pattern=NONBLANK_TEXT_PATTERN),
    AfterValidator(strip_nonblank),
    AfterValidator(_no_control),
]
SearchText = Annotated[
    str,
    StringConstraints(max_length=200, pattern=TEXT_PATTERN),
    AfterValidator(strip),
    AfterValidator(_no_control),
]
Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=NONBLANK_LINE_PATTERN),
    AfterValidator(strip_nonblank),
    AfterValidator(_no_control),
    AfterValidator(_one_line),
]
VersionName = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=50,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    ),
    AfterValidator(strip),
]


def either_case(codes: Iterable[str]) -> str:
    """A pattern that matches exactly `codes`, in upper or lower case (grouped by first letter)."""
    by_first: dict[str, list[str]] = {}
    for code in sorted({c.upper() for c in codes}):
        by_first.setdefault(code[0], []).append(code[1:])

    def letters(chars: str) -> str:
        return "".join(f"[{c}{c.lower()}]" if c.isalpha() else re.escape(c) for c in chars)

    groups = []
    for first, rests in by_first.items():
        if all(len(r) == 1 for r in rests):
            tail = "[" + "".join(r + r.lower() for r in rests) + "]"
        else:
            tail = "(?:" + "|".join(letters(r) for r in rests) + ")"
        groups.append(f"[{first}{first.lower()}]{tail}")
    return "^(?:" + "|".join(groups) + ")$"


COUNTRY_PATTERN = either_case(c.alpha_2 for c in pycountry.countries)
LANGUAGE_PATTERN = either_case(lang.alpha_2 for lang in pycountry.languages if hasattr(lang, "alpha_2"))


def _country(value: str) -> str:
    code = value.upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _language(value: str) -> str:
    code = value.lower()
    if pycountry.languages.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 639-1 language code")
    return code


CountryCode = Annotated[
    str,
    StringConstraints(min_length=2, max_length=2, pattern=COUNTRY_PATTERN),
    AfterValidator(_country),
]
"""An ISO 3166-1 alpha-2 code, in either case; upper case once read."""
LanguageCode = Annotated[
    str, StringConstraints(min_length=2, max_length=2, pattern=LANGUAGE_PATTERN), AfterValidator(_language)
]
"""An ISO 639-1 code, in either case; lower case once read."""

IBAN_PATTERN = r"^[A-Za-z]{2}[0-9]{2}[A-Za-z0-9 ]+$"
Iban = Annotated[str, StringConstraints(min_length=15, max_length=42, pattern=IBAN_PATTERN)]
"""An IBAN as a person writes it (either case, spaces allowed); its checksum and its country's format
are checked by the domain (422 `iban_invalid`)."""
BIC_PATTERN = r"^[A-Za-z0-9]{4}[A-Za-z]{2}[A-Za-z0-9]{2}(?:[A-Za-z0-9]{3})?$"
Bic = Annotated[str, StringConstraints(min_length=8, max_length=11, pattern=BIC_PATTERN)]
"""A BIC (ISO 9362), 8 or 11 characters in either case."""

CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
LINK_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{16,200}$"  # noqa: S105 - a pattern, not a secret
SECOND_FACTOR_CODE_PATTERN = r"^[A-Za-z0-9 -]+$"
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$"
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=CURSOR_PATTERN,
        description="The `next_cursor` of the previous page, as it was given (refused with `invalid_cursor` "
        "when this service did not issue it).",
    ),
]
"""The `cursor` query parameter of every paged list."""


PartnerPath = Annotated[
    uuid.UUID,
    Path(description="The partner's id (the `id` its registration answered); a partner's key may name only its own."),
]
"""The `partner_id` path parameter."""
SubscriptionPath = Annotated[
    uuid.UUID, Path(description="The webhook subscription's id (the `id` its creation answered).")
]
"""The `subscription_id` path parameter."""
DeliveryPath = Annotated[
    int,
    Path(
        ge=1,
        le=2**62,
        description="The delivery's id (one event sent to the subscription, with its attempts), as its "
        "deliveries list gives it.",
    ),
]
"""The `delivery_id` path parameter."""
StatementPath = Annotated[uuid.UUID, Path(description="The quarterly statement's id, as the statements lists give it.")]
"""The `statement_id` path parameter."""
KeyPath = Annotated[uuid.UUID, Path(description="The API key's id (its `id`, never the key itself).")]
"""The `key_id` path parameter."""
CustomerPath = Annotated[
    uuid.UUID, Path(description="The customer's id, as the customer lookup and registrations give it.")
]
"""The `customer_id` path parameter."""
RegistrationPath = Annotated[
    uuid.UUID, Path(description="The registration's id (the `id` its creation answered), one of this partner's.")
]
"""The `registration_id` path parameter."""
LeadPath = Annotated[uuid.UUID, Path(description="The lead's id (the `id` its creation answered).")]
"""The `lead_id` path parameter."""
OfferPath = Annotated[
    uuid.UUID, Path(description="The lead offer's id, one of this partner's, as its lead offers list gives it.")
]
"""The `offer_id` path parameter."""
IncludeRevoked = Annotated[
    bool, Query(description="Whether revoked keys are listed too (default: only the keys in use).")
]
"""The `include_revoked` query parameter of the key lists."""


def page_size(maximum: int) -> Any:
    """The `limit` query parameter of a paged list: how many items one page holds, at most `maximum`."""
    return Query(ge=1, le=maximum, description=f"How many items one page holds at most (1 to {maximum}).")


RFC3339_PATTERN = (
    r"^(?:19|[2-8][0-9])[0-9][0-9]-[0-9][0-9]-[0-9][0-9][Tt][0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
    r"(?:\.[0-9]{1,6})?(?:[Zz]|[+-][0-9][0-9]:[0-9][0-9])$"
)
"""An RFC 3339 date-time with an offset, in the years the service accepts (1900-8999)."""
_RFC3339 = re.compile(RFC3339_PATTERN)


def _rfc3339(value: object) -> object:
    # Pydantic would also take numbers (and numeric strings) as Unix times; the API speaks RFC 3339.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T09:00:00Z")
    if not isinstance(value, str | datetime):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(supported),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]
"""An RFC 3339 timestamp with an offset, converted to UTC. Naive times and times outside
1900..8999 are refused."""


# --- what each pattern means, in words ------------------------------------------------------------

PATTERN_MEANINGS: dict[str, str] = {
    TEXT_PATTERN: "text without control characters (tab, line feed and carriage return are allowed)",
    LINE_PATTERN: "a single line without control characters",
    NONBLANK_TEXT_PATTERN: "text that is not blank and has no control characters",
    NONBLANK_LINE_PATTERN: "a single line that is not blank and has no control characters",
    COUNTRY_PATTERN: "an ISO 3166-1 alpha-2 country code",
    LANGUAGE_PATTERN: "an ISO 639-1 language code",
    CURSOR_PATTERN: "a cursor this service gave (letters, digits, - and _)",
    IBAN_PATTERN: "an IBAN: two letters of its country, two check digits and the account (spaces allowed)",
    BIC_PATTERN: "a BIC: 8 or 11 letters and digits, the 5th and 6th its country's letters",
    RFC3339_PATTERN: "an RFC 3339 date-time with its offset (2026-03-01T09:00:00Z), in the years 1900 to 8999",
    r"^[A-Za-z]{2}$": "a two-letter country code",
    r"^[a-z_]+$": "a code of lower-case letters and _",
    r"^(19|2\d)\d\d-Q[1-4]$": "a quarter such as 2026-Q1",
    r"^[\x21-\x7e]+$": "printable ASCII without spaces",
    r"^[\x20-\x7e]+$": "printable ASCII",
    r"^[A-Za-z0-9_.:\-]+$": "letters, digits and . _ : -",
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$": "a name of letters, digits and . _ - that starts with a letter or digit",
    r"^[A-Za-z0-9 .\-]+$": "a VAT id (letters, digits, spaces, dots and hyphens)",
    r"^[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$": "a domain name such as example.com",
    r"^[^\x00-\x1f\x7f]+$": "a single line without control characters",
    r"^[A-Za-z0-9._-]+$": "a SKU (letters, digits and . _ -)",
    r"^[A-Z]{3}$": "a three-letter currency code",
    r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\x00-\x1f\x7f][^\x00-\x1f\x7f]*$": (
        "an http or https URL with a host and no control characters"
    ),
    r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$": "an IANA time zone name such as Europe/Paris",
    LINK_TOKEN_PATTERN: "the token of a link this service mailed (letters, digits, - and _)",
    SECOND_FACTOR_CODE_PATTERN: "an authenticator app's code (6 digits) or a recovery code",
}
"""Each pattern a request is checked against, in the words a refusal uses: a refusal says what the
value should be, never the regular expression (tests/test_health_and_errors.py checks every pattern
of the OpenAPI document has its words here)."""


def describe_pattern(pattern: str) -> str | None:
    """The words for a pattern, or None for one that has none (the refusal then names no form)."""
    if pattern in PATTERN_MEANINGS:
        return PATTERN_MEANINGS[pattern]
    from app.domain.store_events import CURRENCY_PATTERN  # the list of currencies of money (R23)

    if pattern == CURRENCY_PATTERN:
        return "the ISO 4217 code of a currency of money (not a fund, metal or test code)"
    return None
