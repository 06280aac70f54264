"""R05: identifying a customer by normalised strong identifiers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stdnum import get_cc_module
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError

FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.fr",
        "yahoo.co.uk",
        "yahoo.de",
        "hotmail.com",
        "hotmail.fr",
        "hotmail.co.uk",
        "outlook.com",
        "outlook.fr",
        "live.com",
        "live.fr",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "proton.me",
        "protonmail.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "zoho.com",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "t-online.de",
        "libero.it",
        "qq.com",
        "163.com",
        "126.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
    }
)
_NON_ALNUM = re.compile(r"[^A-Z0-9]")


@dataclass(frozen=True, order=True)
class Identifier:
    kind: str  # "vat", "domain" or "store_id"
    value: str


def normalise_vat(vat_id: str, country: str) -> str | None:
    """Upper case, no spaces or punctuation, always with its country prefix (Greece uses EL)."""
    value = _NON_ALNUM.sub("", vat_id.upper())
    if len(value) < 4:
        return None
    if not value[:2].isalpha():
        value = ("EL" if country.upper() == "GR" else country.upper()) + value
    return value


def normalise_domain(domain_or_email: str) -> str | None:
    value = domain_or_email.strip().lower().rsplit("@", 1)[-1].strip(".")
    value = value.removeprefix("www.")
    if "." not in value or len(value) > 253 or not re.fullmatch(r"[a-z0-9.-]+", value):
        return None
    return value


def is_free_mail(domain: str) -> bool:
    return domain in FREE_MAIL_DOMAINS


def normalise_store_id(store_customer_id: str) -> str | None:
    value = store_customer_id.strip()
    return value or None


@dataclass(frozen=True)
class IdentifierCheck:
    identifiers: tuple[Identifier, ...]
    free_mail_domain: str | None


def strong_identifiers(
    *, country: str, vat_id: str | None, email: str | None, domain: str | None, store_customer_id: str | None
) -> IdentifierCheck:
    """The strong identifiers among what was given; free-mail domains are not identifiers."""
    found: set[Identifier] = set()
    free: str | None = None
    if vat_id and (vat := normalise_vat(vat_id, country)):
        found.add(Identifier("vat", vat))
    for source in (domain, email):
        if source and (normal := normalise_domain(source)):
            if is_free_mail(normal):
                free = normal
            else:
                found.add(Identifier("domain", normal))
    if store_customer_id and (store := normalise_store_id(store_customer_id)):
        found.add(Identifier("store_id", store))
    return IdentifierCheck(tuple(sorted(found)), free)


_EU_VAT_PREFIXES = frozenset({"EL"} | {code.upper() for code in eu_vat.MEMBER_STATES} - {"GR"})
"""Prefixes of EU VAT ids (Greece's is EL), checked by python-stdnum's EU rules."""


def vat_problem(vat_id: str, country: str) -> str | None:
    """Why a VAT id is not valid for its country (R22, python-stdnum), or None when it is.

    The id's own prefix, or else the company's country, says whose rules apply; a country python-stdnum
    has no VAT rules for accepts any id of the normalised form.
    """
    value = normalise_vat(vat_id, country)
    if value is None:
        return "is too short to be a VAT id."
    prefix = value[:2]
    module: Any
    if prefix in _EU_VAT_PREFIXES:
        module = eu_vat
    else:
        module = get_cc_module(prefix.lower(), "vat")
        if module is None:
            return None
    first: ValidationError | None = None
    for candidate in (value, value[2:]):  # some countries' rules want the prefix, some do not
        try:
            module.validate(candidate)
            return None
        except ValidationError as exc:
            first = first or exc
    assert first is not None
    return f"is not a valid {prefix} VAT id: {first}"


@dataclass(frozen=True)
class OwnCompany:
    """R22: what identifies a partner's own company: every VAT id and domain it ever declared."""

    vats: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def of(cls, identifiers: Iterable[Identifier]) -> OwnCompany:
        found = list(identifiers)
        return cls(
            frozenset(i.value for i in found if i.kind == "vat"),
            frozenset(i.value for i in found if i.kind == "domain"),
        )

    def matches(self, identifiers: Iterable[Identifier]) -> str | None:
        """What of the customer's identifiers is the partner's own, or None."""
        for identifier in identifiers:
            if identifier.kind == "vat" and identifier.value in self.vats:
                return f"VAT id {identifier.value}"
            if identifier.kind == "domain":
                for own in sorted(self.domains):
                    if identifier.value == own or identifier.value.endswith("." + own):
                        return f"domain {identifier.value}"
        return None


def declared_identifiers(
    *, country: str, vat_id: str | None, website: str | None, contact_email: str
) -> frozenset[Identifier]:
    """R22: the identifiers a partner's profile declares: its VAT id (when given), its website's host
    without `www.` and its contact e-mail's domain; free-mail domains are not the company's."""
    found: set[Identifier] = set()
    try:
        host = urlsplit(website).hostname if website else None
    except ValueError:  # not a URL: it names no host
        host = None
    for source in (host, contact_email):
        if source and (normal := normalise_domain(source)) and not is_free_mail(normal):
            found.add(Identifier("domain", normal))
    if vat_id and (vat := normalise_vat(vat_id, country)):
        found.add(Identifier("vat", vat))
    return frozenset(found)


def own_company(*, country: str, vat_id: str | None, website: str | None, contact_email: str) -> OwnCompany:
    """R22: the identifiers the partner's profile declares now (see `declared_identifiers`)."""
    return OwnCompany.of(
        declared_identifiers(country=country, vat_id=vat_id, website=website, contact_email=contact_email)
    )
