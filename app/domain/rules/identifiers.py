"""R05: identifying a customer by normalised strong identifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
