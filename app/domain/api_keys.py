"""API keys: issue, authenticate, list, rotate and revoke.

A key is 256 random bits behind a readable prefix naming its kind. Only its SHA-256 is stored:
with that much entropy a fast hash is safe, and a slow password hash would cost more than the
request it guards.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import read_cache
from app.db.repositories import api_keys as repo
from app.db.tables import ApiKey
from app.domain import audit
from app.domain.context import Caller, Context
from app.domain.errors import Invalid, NotFound, Unauthenticated

KeyKind = Literal["admin", "partner", "store"]
KIND_PREFIX: dict[str, str] = {"admin": "qpa_", "partner": "qpp_", "store": "qps_"}
SCOPES_BY_KIND: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "write"}),
    "partner": frozenset({"partner"}),
    "store": frozenset({"store"}),
}
LAST_USED_RESOLUTION = read_cache.LAST_USED_RESOLUTION
AUDIT_FIELDS = ("kind", "partner_id", "name", "prefix", "scopes", "revoked_at")


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str


def _new_key(kind: str) -> tuple[str, str, str]:
    plaintext = KIND_PREFIX[kind] + secrets.token_urlsafe(32)
    return plaintext, plaintext[:12], hash_key(plaintext)


def _check_scopes(kind: str, scopes: Sequence[str]) -> list[str]:
    allowed = SCOPES_BY_KIND[kind]
    unknown = sorted(set(scopes) - allowed)
    if unknown:
        raise Invalid(
            f"Scopes {', '.join(unknown)} do not exist for {kind} keys; allowed: {', '.join(sorted(allowed))}.",
            code="unknown_scope",
        )
    if not scopes:
        raise Invalid("A key needs at least one scope.", code="unknown_scope")
    return sorted(set(scopes))


async def issue(
    session: AsyncSession,
    ctx: Context,
    *,
    kind: KeyKind,
    name: str,
    scopes: Sequence[str] | None = None,
    partner_id: uuid.UUID | None = None,
) -> IssuedKey:
    """Create a key and return its plaintext, which is never shown again."""
    if (kind == "partner") != (partner_id is not None):
        raise Invalid(
            "Partner keys, and only they, belong to a partner.",
            code="invalid_key_owner",
        )
    chosen = _check_scopes(kind, scopes if scopes is not None else sorted(SCOPES_BY_KIND[kind]))
    plaintext, prefix, digest = _new_key(kind)
    key = ApiKey(
        kind=kind,
        partner_id=partner_id,
        name=name,
        prefix=prefix,
        key_hash=digest,
        scopes=chosen,
        created_at=ctx.now,
        created_by=ctx.actor,
    )
    session.add(key)
    await session.flush()
    audit.record(
        session,
        ctx,
        action="api_key.created",
        object_type="api_key",
        object_id=key.id,
        after=audit.snapshot(key, AUDIT_FIELDS),
    )
    return IssuedKey(key, plaintext)


async def authenticate(session: AsyncSession, plaintext: str, now: datetime) -> Caller:
    """The caller a presented key stands for; refuses unknown and revoked keys alike.

    A request's session holds the process's cache (app/db/read_cache.py): a key known to it costs no
    round trip, and its use is written with the cache's next check; a revoked key is refused by every
    process within the cache's bound (`read_cache.BOUND_SECONDS`), by this one at once."""
    if not plaintext or len(plaintext) > 200:
        raise Unauthenticated("The API key is not valid.", code="invalid_api_key")
    digest = hash_key(plaintext)
    cache = read_cache.of(session)
    if cache is not None:
        await cache.refresh(session)
        if not cache.available:
            cache = None
    if cache is None:
        key = await repo.use(session, digest, now, now - LAST_USED_RESOLUTION)
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("The API key is not valid or has been revoked.", code="invalid_api_key")
        return _caller(key)

    async def read_all(limit: int) -> dict[str, read_cache.KeyEntry] | None:
        rows = await repo.active(session, limit=limit + 1)
        if len(rows) > limit:
            return None
        return {row.key_hash: read_cache.KeyEntry(_caller(row), row.last_used_at) for row in rows}

    await cache.load_keys(read_all)
    entry = cache.keys.get(digest)
    if entry is None:
        generation = cache.generation
        key = await repo.by_hash(session, digest)
        if key is None or key.revoked_at is not None:  # never held: unknown and revoked keys are read each time
            raise Unauthenticated("The API key is not valid or has been revoked.", code="invalid_api_key")
        entry = read_cache.KeyEntry(_caller(key), key.last_used_at)
        cache.remember_key(digest, entry, generation)
    cache.note_use(entry, entry.caller.key_id, now)
    caller: Caller = entry.caller
    return caller


def remembered(cache: read_cache.ReadCache, plaintext: str, now: datetime) -> Caller | None:
    """The caller a presented key stands for, from this process's memory alone: what `authenticate`
    answers without a round trip (the cache is current and holds the key; its use is noted as
    `authenticate` notes it). None when only `authenticate` can tell (an unknown, revoked or new key,
    a check due): the caller then goes the way that reads and checks."""
    if not plaintext or len(plaintext) > 200 or not cache.current():
        return None
    entry = cache.keys.get(hash_key(plaintext))
    if entry is None:
        return None
    cache.note_use(entry, entry.caller.key_id, now)
    caller: Caller = entry.caller
    return caller


def _caller(key: Any) -> Caller:
    return Caller(kind=key.kind, key_id=key.id, partner_id=key.partner_id, scopes=frozenset(key.scopes))


async def listing(
    session: AsyncSession,
    *,
    kinds: Sequence[str],
    partner_id: uuid.UUID | None = None,
    include_revoked: bool = False,
) -> Sequence[ApiKey]:
    """Keys of the given kinds (one partner's, when named), oldest first; the uses this process has
    noted and not yet written are written first, so `last_used_at` shows them."""
    cache = read_cache.of(session)
    if cache is not None:
        await cache.write_uses(session)
    return await repo.listing(session, kinds=kinds, partner_id=partner_id, include_revoked=include_revoked)


async def _owned(
    session: AsyncSession,
    key_id: uuid.UUID,
    *,
    kinds: Sequence[str],
    partner_id: uuid.UUID | None,
) -> ApiKey:
    key = await repo.get(session, key_id)
    if key is None or key.kind not in kinds or (partner_id is not None and key.partner_id != partner_id):
        raise NotFound(f"No API key {key_id}.", code="api_key_not_found")
    return key


async def revoke(
    session: AsyncSession,
    ctx: Context,
    key_id: uuid.UUID,
    *,
    kinds: Sequence[str],
    partner_id: uuid.UUID | None = None,
) -> ApiKey:
    """Revoke a key; revoking a revoked key changes nothing."""
    key = await _owned(session, key_id, kinds=kinds, partner_id=partner_id)
    if key.revoked_at is None:
        before = audit.snapshot(key, AUDIT_FIELDS)
        key.revoked_at = ctx.now
        await session.flush()
        read_cache.changed(session, read_cache.API_KEYS)
        audit.record(
            session,
            ctx,
            action="api_key.revoked",
            object_type="api_key",
            object_id=key.id,
            before=before,
            after=audit.snapshot(key, AUDIT_FIELDS),
        )
    return key


async def rotate(session: AsyncSession, ctx: Context, key_id: uuid.UUID, *, partner_id: uuid.UUID) -> IssuedKey:
    """Replace a partner's key with a new one under the same name; the old one stops at once."""
    old = await _owned(session, key_id, kinds=["partner"], partner_id=partner_id)
    if old.revoked_at is not None:
        raise Invalid(
            "A revoked key cannot be rotated; create a new key instead.",
            code="api_key_revoked",
        )
    await revoke(session, ctx, key_id, kinds=["partner"], partner_id=partner_id)
    return await issue(session, ctx, kind="partner", name=old.name, partner_id=partner_id)


async def has_active_admin_key(session: AsyncSession) -> bool:
    return await repo.count_active_admin_keys(session) > 0
