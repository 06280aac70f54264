"""API schemas shared by every feature: the request base, list pages, e-mail, website and money fields."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    UrlConstraints,
    WithJsonSchema,
)
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from app.domain.rules.numbers import WholeInt
from app.domain.store_events import CURRENCY_PATTERN
from app.routers.fields import Reason, strip

PartnerStatusName = Literal["pending", "active", "suspended", "terminated"]


_SPECIAL_USE = "|".join(
    "".join(f"[{c.upper()}{c}]" for c in name) for name in ("arpa", "invalid", "local", "localhost", "onion", "test")
)


Email = Annotated[
    EmailStr,
    StringConstraints(max_length=320),
    Field(json_schema_extra={"not": {"pattern": f"@(?:.*\\.)?(?:{_SPECIAL_USE})\\.?$"}}),
]
"""An e-mail address; domains reserved for special use (RFC 6761: `.test`, `.localhost`...) are refused."""


URL_MAX_LENGTH = 2083
"""The longest website or agreement URL taken, in characters as sent (the document's `maxLength`)."""


def _url_as_sent_fits(value: Any) -> Any:
    if isinstance(value, str) and len(value) > URL_MAX_LENGTH:
        raise PydanticCustomError(
            "url_too_long", "URL should have at most {max_length} characters", {"max_length": URL_MAX_LENGTH}
        )
    return value


Website = Annotated[
    AnyUrl,
    UrlConstraints(allowed_schemes=["http", "https"]),
    BeforeValidator(_url_as_sent_fits),
    WithJsonSchema({"type": "string", "maxLength": URL_MAX_LENGTH, "minLength": 1, "format": "uri"}),
]
"""An http or https URL of at most 2083 characters as sent, stored normalised. Normalising may lengthen
it (percent-encoding writes a character of four UTF-8 bytes as twelve, an international host name
becomes punycode), so the columns that store it have no length of their own: a URL the document
allows is never refused for its normalised length (pydantic's `HttpUrl` would cap that at 2083)."""


VatId = Annotated[
    str, StringConstraints(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9 .\-]+$"), AfterValidator(strip)
]


def request_examples(*examples: JsonDict) -> ConfigDict:
    """The config that shows a request body's examples in the OpenAPI document."""
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class RequestModel(BaseModel):
    """Bodies our own clients send: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


Currency = Annotated[
    str,
    StringConstraints(pattern=CURRENCY_PATTERN),
    Field(description="An ISO 4217 code of money (R23: not a fund, metal or test code such as XTS, XXX, XAU)."),
]


Money = Annotated[WholeInt, Field(ge=0, le=10**13)]


class ReasonRequest(RequestModel):
    model_config = request_examples(
        {"reason": 'The text spells the brand "QAlyptus" (R20).'}, {"reason": "The partner corrected its listing."}
    )

    reason: Reason = Field(description="Why; kept in the audit log and shown to the partner where it applies.")


class Count(BaseModel):
    key: str = Field(description="What is counted, e.g. a band of points (`1-159`).")
    count: int = Field(description="How many.")


class OnePage(BaseModel):
    """A list that always fits on one page: the shape of every list, with nothing more to fetch."""

    next_cursor: str | None = Field(default=None, description="Always null: the whole list is on this page.")
    has_more: bool = Field(default=False, description="Always false: the whole list is on this page.")
