"""Program terms and the store's reseller price quote."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from app.domain import pricing, terms, terms_preview, webhooks
from app.errors import problem_responses
from app.routers.deps import (
    AdminReadOrPartner,
    AdminWrite,
    ClockDep,
    SessionDep,
    SettingsDep,
    StoreCaller,
    context,
)
from app.routers.fields import UtcDatetime
from app.routers.schemas.orders import QuotedLine, QuoteRequest, QuoteResponse
from app.routers.schemas.program import (
    SkuAdded,
    SkuAddition,
    TermsInForce,
    TermsPublication,
    TermsVersion,
    TermsVersionList,
)

router = APIRouter(prefix="/v1")


def _version(v: terms.TermsVersion) -> TermsVersion:
    return TermsVersion(version=v.version, effective_from=v.effective_from, terms=v.terms)


@router.get(
    "/program/terms", tags=["program"], responses=problem_responses(401, 403, 404, 422), summary="Terms in force"
)
async def get_program_terms(
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    _reader: AdminReadOrPartner,
    at: Annotated[
        UtcDatetime | None, Query(description="The moment whose terms version is wanted (default: now).")
    ] = None,
) -> TermsInForce:
    """Admin (read) or partner (R01). The version in force at `at`: points per SKU, levels and rates,
    windows, time zone; and where the brand assets partners are to use are kept."""
    version = await terms.in_force(session, at or clock.now())
    return TermsInForce(
        version=version.version,
        effective_from=version.effective_from,
        terms=version.terms,
        brand_assets_url=str(settings.brand_assets_url) if settings.brand_assets_url else None,
    )


@router.get(
    "/program/terms/versions",
    tags=["program"],
    responses=problem_responses(401, 403, 422),
    summary="All terms versions",
)
async def list_program_terms(session: SessionDep, _reader: AdminReadOrPartner) -> TermsVersionList:
    """Admin (read) or partner (R01). Oldest first, including versions published to take effect later."""
    return TermsVersionList(items=[_version(v) for v in await terms.versions(session)])


@router.post(
    "/program/terms",
    status_code=status.HTTP_201_CREATED,
    tags=["program"],
    responses=problem_responses(401, 403, 409, 422),
    summary="Publish terms for a future date",
)
async def publish_program_terms(
    body: TermsPublication, request: Request, session: SessionDep, clock: ClockDep, admin: AdminWrite
) -> TermsVersion:
    """Admin (write). Orders placed from `effective_from` on use them; past entries never change. A
    preview of the same draft (`POST /v1/program/terms/preview`) is kept with the version."""
    published = await terms.publish(
        session, context(request, admin, clock), effective_from=body.effective_from, terms=body.terms
    )
    await terms_preview.published(session, published)
    return _version(published)


@router.post(
    "/program/skus",
    status_code=status.HTTP_201_CREATED,
    tags=["program"],
    responses=problem_responses(401, 403, 409, 422),
    summary="Add a SKU",
)
async def add_program_sku(
    body: SkuAddition, request: Request, session: SessionDep, clock: ClockDep, admin: AdminWrite
) -> SkuAdded:
    """Admin (write). Adds the SKU to every terms version that lacks it, so parked orders naming it can
    be replayed. Only additive: no entry ever referred to an unknown SKU."""
    amended = await terms.add_sku(session, context(request, admin, clock), sku=body.sku, points=body.points)
    return SkuAdded(sku=body.sku, points=body.points, amended_versions=list(amended))


async def _settled_quote(request: Request, body: QuoteRequest) -> QuoteRequest:
    """The quote request, once what the store accepted before it is applied.

    FastAPI reads and validates the body before calling this: a request that can never succeed (no
    partner, a currency that is not money, ...) is refused at once, never after waiting for the
    applier nor with 503 `level_pending`. The wait comes before the key check opens the request's
    transaction: on SQLite that would hold the writer lock the worker needs to apply what the quote
    waits for."""
    await webhooks.wait_until_applied(request.app.state.read, within=QUOTE_WAIT_SECONDS)
    return body


QUOTE_WAIT_SECONDS = 2.0
SettledQuote = Annotated[QuoteRequest, Depends(_settled_quote)]


@router.post(
    "/pricing/quote",
    tags=["pricing"],
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="Reseller price quote",
)
async def quote_reseller_price(
    body: SettledQuote, session: SessionDep, clock: ClockDep, _store: StoreCaller
) -> QuoteResponse:
    """The store's key. R12: the partner's discount on these lines for this end customer, now — or
    why none applies. A quote never prices with a level that accepted store events are about to
    change: it waits (up to 2 s) until what was accepted before it is applied, else answers 503
    `level_pending` with `Retry-After`."""
    result = await pricing.quote(
        session,
        partner_id=body.partner_id,
        company=body.customer.company,
        country=body.customer.country,
        email=str(body.customer.email) if body.customer.email else None,
        vat_id=body.customer.vat_id,
        store_customer_id=body.customer.store_customer_id,
        lines=[pricing.QuoteLine(ln.sku, ln.quantity, ln.kind, ln.list_amount, ln.licence_id) for ln in body.lines],
        now=clock.now(),
    )
    return QuoteResponse(
        partner_id=result.partner_id,
        currency=body.currency,
        level=result.level,
        rate_bp=result.rate_bp,
        lines=[QuotedLine(**line.__dict__) for line in result.lines],
        no_discount_reason=result.no_discount_reason,
        outcome=result.outcome,
        terms_version=result.terms_version,
    )
