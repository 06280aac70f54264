"""Shaping table rows into API schemas."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from app.db import tables
from app.domain.errors import Invalid
from app.domain.rules.quarters import Quarter
from app.routers.schemas.agreements import Agreement
from app.routers.schemas.keys import ApiKey, IssuedApiKey, IssuedServiceApiKey, ServiceApiKey
from app.routers.schemas.partners import Partner


def partner(row: tables.Partner) -> Partner:
    return Partner.model_validate(row, from_attributes=True)


def api_key(row: tables.ApiKey) -> ApiKey:
    return ApiKey.model_validate(row, from_attributes=True)


def issued_key(row: tables.ApiKey, plaintext: str) -> IssuedApiKey:
    return IssuedApiKey(**api_key(row).model_dump(), key=plaintext)


def service_key(row: tables.ApiKey) -> ServiceApiKey:
    """An admin or store key (no partner)."""
    return ServiceApiKey.model_validate(row, from_attributes=True)


def issued_service_key(row: tables.ApiKey, plaintext: str) -> IssuedServiceApiKey:
    return IssuedServiceApiKey(**service_key(row).model_dump(), key=plaintext)


def agreement(row: tables.AgreementVersion) -> Agreement:
    return Agreement.model_validate(row, from_attributes=True)


def encode_cursor(*parts: object) -> str:
    raw = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, count: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    parts = raw.split("|")
    if len(parts) != count:
        raise Invalid(
            "The cursor is not one this service issued.",
            code="invalid_cursor",
            field="cursor",
        )
    return parts


def _moment(text: str) -> datetime:
    """A cursor's time: an aware ISO 8601 moment of a plausible year, else ValueError."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or not 1900 <= parsed.year <= 9000:
        raise ValueError(text)
    return parsed.astimezone(UTC)


def _row_id(text: str) -> int:
    """A cursor's integer id: digits only, within a BIGINT, else ValueError."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ValueError(text)
    return int(text)


def decode_time_id_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """(a time, a UUID id) of the last row of the previous page."""
    if cursor is None:
        return None
    at, ident = _decode(cursor, 2)
    try:
        return _moment(at), uuid.UUID(ident)
    except (ValueError, OverflowError) as exc:
        raise Invalid("The cursor is not one this service issued.", code="invalid_cursor", field="cursor") from exc


def decode_time_int_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """(a time, an integer id) of the last row of the previous page."""
    if cursor is None:
        return None
    at, ident = _decode(cursor, 2)
    try:
        return _moment(at), _row_id(ident)
    except (ValueError, OverflowError) as exc:
        raise Invalid("The cursor is not one this service issued.", code="invalid_cursor", field="cursor") from exc


def decode_text_cursor(cursor: str | None) -> str | None:
    """A text key (an e-mail address) of the last row of the previous page."""
    if cursor is None:
        return None
    (value,) = _decode(cursor, 1)
    if not value or len(value) > 320:
        raise Invalid("The cursor is not one this service issued.", code="invalid_cursor", field="cursor")
    return value


def decode_uuid_cursor(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    (value,) = _decode(cursor, 1)
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise Invalid("The cursor is not one this service issued.", code="invalid_cursor", field="cursor") from exc


def decode_int_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    (value,) = _decode(cursor, 1)
    try:
        return _row_id(value)
    except ValueError as exc:
        raise Invalid("The cursor is not one this service issued.", code="invalid_cursor", field="cursor") from exc


def decode_overdue_quarter_cursor(cursor: str | None) -> tuple[str, str, str] | None:
    """(quarter, partner id, currency) of the last row of the previous page."""
    if cursor is None:
        return None
    quarter, partner_id, currency = _decode(cursor, 3)
    try:
        return str(Quarter.parse(quarter)), str(uuid.UUID(partner_id)), currency
    except ValueError as exc:
        raise Invalid("The cursor is not one this service issued.", code="invalid_cursor", field="cursor") from exc


def id_page(rows: Sequence[Any], limit: int, schema: type[BaseModel]) -> dict[str, Any]:
    """One page of rows fetched with `limit + 1` (newest id first): the items and the next cursor."""
    page = rows[:limit]
    return {
        "items": [schema.model_validate(r, from_attributes=True) for r in page],
        "next_cursor": encode_cursor(page[-1].id) if len(rows) > limit else None,
        "has_more": len(rows) > limit,
    }
