"""`Idempotency-Key` for money-moving POSTs (IETF draft semantics).

The same key with the same request replays the stored answer; the same key with another request is
422; a key whose first request is still running is 409. The answer is stored in the transaction
that did the work, so a replay never describes work that was rolled back; a request that failed
frees its key.

A claim that outlives its request (a worker killed mid-request) is taken over by a retry once the
lease has passed: the retry writes a new claim token, and a request stores its answer (and so
commits its work) only while its own token still holds, so a slow original and the retry that took
its key over never both apply.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories import idempotency as repo
from app.db.session import commit_now, roll_back_now
from app.db.tables import IdempotencyRecord
from app.domain.errors import Conflict, Invalid
from app.routers.deps import CallerDep, ClockDep, SessionDep
from app.settings import Settings

T = TypeVar("T")


class Idempotency:
    def __init__(self, actor: str, key: str | None) -> None:
        self.actor, self.key = actor, key
        self.token = uuid.uuid4().hex
        self.stored: IdempotencyRecord | None = None

    def replay(self) -> JSONResponse | None:
        """The stored answer when this key was used before with the same request."""
        if self.stored is None or self.stored.response_status is None:
            return None
        return JSONResponse(
            self.stored.response_body, status_code=self.stored.response_status, headers={"Idempotent-Replayed": "true"}
        )

    async def complete(self, session: AsyncSession, status: int, body: Any) -> None:
        """Keep the answer with the work, in the same transaction."""
        if self.key is not None and not await repo.complete(session, self.actor, self.key, self.token, status, body):
            # Raising rolls this request's work back: the request that took the key over applies it.
            raise Conflict(
                "This request outlived its claim on the Idempotency-Key and another request with the "
                "same key took it over; nothing was applied here. Send it again for that request's answer.",
                code="idempotency_claim_lost",
            )

    async def respond(self, session: AsyncSession, status: int, work: Callable[[], Awaitable[T]]) -> T:
        """The stored answer when this is a replay; otherwise do the work and keep its answer."""
        if (replay := self.replay()) is not None:
            # FastAPI sends a Response as it is, whatever the route declares it returns.
            return cast(T, replay)
        body = await work()
        await self.complete(session, status, jsonable_encoder(body))
        return body


async def _idempotency(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    clock: ClockDep,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Replays the stored answer when the same request is sent again with this key.",
        ),
    ] = None,
) -> AsyncIterator[Idempotency]:
    handle = Idempotency(caller.actor, key)
    if key is None:
        yield handle
        return
    body = await request.body()
    digest = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"?" + request.url.query.encode() + b"\n" + body
    ).hexdigest()
    now = clock.now()
    claimed = await repo.claim(
        session,
        IdempotencyRecord(
            actor=caller.actor,
            key=key,
            method=request.method,
            path=request.url.path,
            request_hash=digest,
            status="in_flight",
            created_at=now,
            claim_token=handle.token,
            claimed_at=now,
        ),
    )
    existing = None if claimed else await repo.get(session, caller.actor, key)
    if existing is not None and existing.request_hash == digest and existing.status == "in_flight":
        settings: Settings = request.app.state.settings
        since = existing.claimed_at or existing.created_at
        if now - since >= timedelta(seconds=settings.idempotency_lease_seconds):
            if await repo.take_over(
                session, caller.actor, key, old_token=existing.claim_token, new_token=handle.token, now=now
            ):
                existing = None  # this request holds the key now
            else:  # finished, freed or taken over meanwhile: answer from what it is now
                existing = await repo.get(session, caller.actor, key)
                if existing is None:
                    raise Conflict(
                        "The request with this Idempotency-Key just ended; send it again.", code="idempotency_in_flight"
                    )
    # The in-flight marker must be visible to a concurrent request with the same key before the work
    # starts: the claim commits on its own, and the work runs in a new transaction.
    await commit_now(session, purpose="idempotency claim: visible to a concurrent retry, kept if the work fails")
    if existing is not None:
        if existing.request_hash != digest:
            raise Invalid(
                "This Idempotency-Key was used with another request; use a new key for a new request.",
                code="idempotency_key_reused",
            )
        if existing.status == "in_flight":
            raise Conflict("A request with this Idempotency-Key is still in progress.", code="idempotency_in_flight")
        handle.stored = existing
        yield handle
        return
    try:
        yield handle
    except BaseException:
        await roll_back_now(session, purpose="idempotency release: the work failed, so none of it is kept")
        await repo.release(session, caller.actor, key, handle.token)
        await commit_now(session, purpose="idempotency release: frees the key for a corrected retry")
        raise


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency, scope="function")]
