"""Admin: the vendor's customers, their import and the active-sales-process flag (R06)."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError

from app.db import tables
from app.domain import customers, registrations
from app.domain.errors import Invalid
from app.domain.rules.identifiers import Identifier, normalise_domain, normalise_store_id, normalise_vat
from app.errors import problem_responses
from app.routers import convert
from app.routers.deps import AdminRead, AdminWrite, ClockDep, SessionDep, context
from app.routers.fields import LINE_PATTERN, Cursor, CustomerPath, SearchText, page_size
from app.routers.schemas.customers import (
    Customer,
    CustomerImport,
    CustomerImportResult,
    CustomerImportRow,
    CustomerPage,
    ImportError_,
    RegistrationRefusal,
    RegistrationRefusalPage,
    SalesProcessFlag,
)

router = APIRouter(prefix="/v1/customers", tags=["customers"])
imports_router = APIRouter(prefix="/v1/customer-imports", tags=["customers"])
CSV_COLUMNS = ("company", "country", "vat_id", "domain", "store_customer_id")


async def _customer(session: SessionDep, row: tables.Customer) -> Customer:
    return _customer_of(row, await customers.identifiers(session, row.id))


def _customer_of(row: tables.Customer, idents: list[Identifier]) -> Customer:
    return Customer(
        id=row.id,
        company=row.company,
        country=row.country,
        created_at=row.created_at,
        existing=customers.is_existing(row),
        first_purchase_at=row.first_purchase_at,
        imported_at=row.imported_at,
        sales_process_until=row.sales_process_until,
        sales_process_reason=row.sales_process_reason,
        identifiers=[f"{i.kind}:{i.value}" for i in idents],
    )


async def _import(
    request: Request, session: SessionDep, clock: ClockDep, admin: object, rows: list[customers.ImportRow]
) -> CustomerImportResult:
    result = await customers.import_existing(session, context(request, admin, clock), rows)  # type: ignore[arg-type]
    return CustomerImportResult(
        created=result.created,
        marked_existing=result.marked_existing,
        unchanged=result.unchanged,
        errors=[ImportError_(row=int(e["row"]), detail=str(e["detail"])) for e in result.errors],  # type: ignore[call-overload]
    )


def _rows(items: list[CustomerImportRow]) -> list[customers.ImportRow]:
    return [
        customers.ImportRow(
            company=i.company,
            country=i.country,
            vat_id=i.vat_id,
            domain=i.domain,
            store_customer_id=i.store_customer_id,
        )
        for i in items
    ]


@imports_router.post("", responses=problem_responses(401, 403, 422), summary="Import existing customers (JSON)")
async def import_customers(
    body: CustomerImport, request: Request, session: SessionDep, clock: ClockDep, admin: AdminWrite
) -> CustomerImportResult:
    """Admin (write). Identifiers only; idempotent: a customer imported twice is counted unchanged."""
    return await _import(request, session, clock, admin, _rows(body.customers))


@imports_router.post(
    "/csv",
    responses=problem_responses(401, 403, 422),
    summary="Import existing customers (CSV)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": (
                        "company,country,vat_id,domain,store_customer_id\n"
                        "Contoso SA,FR,FR40303265045,contoso.example,cus_77\n"
                    ),
                }
            },
        }
    },
)
async def import_customers_csv(
    request: Request, session: SessionDep, clock: ClockDep, admin: AdminWrite
) -> CustomerImportResult:
    """Admin (write). A header row naming company, country and any of vat_id, domain, store_customer_id."""
    raw = await request.body()
    if len(raw) > 5_000_000:
        raise Invalid("The CSV is larger than 5 MB; split it.", code="csv_too_large")
    try:
        text = raw.decode("utf-8-sig")
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        unknown = [h for h in header if h not in CSV_COLUMNS]
        if unknown or "company" not in header or "country" not in header:
            raise Invalid(
                f"The CSV header must name company and country, and may name vat_id, domain, store_customer_id"
                f"{'; unknown: ' + ', '.join(unknown) if unknown else ''}.",
                code="csv_header_invalid",
            )
        items = []
        for number, record in enumerate(reader, start=2):
            values = {k: (v or None) for k, v in record.items() if k is not None}
            try:
                items.append(CustomerImportRow(**values))
            except ValidationError as exc:
                fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors()}))
                raise Invalid(f"CSV line {number}: invalid {fields}.", code="csv_row_invalid", line=number) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise Invalid(f"The body is not readable CSV in UTF-8: {exc}.", code="csv_unreadable") from exc
    if not items:
        raise Invalid("The CSV has no rows.", code="csv_empty")
    return await _import(request, session, clock, admin, _rows(items))


@router.get("", responses=problem_responses(401, 403, 422), summary="Find customers")
async def list_customers(
    session: SessionDep,
    _admin: AdminRead,
    q: Annotated[SearchText | None, Query(description="Part of the company name.")] = None,
    vat_id: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=LINE_PATTERN,
            description="Find the customer with this VAT id, normalised as at registration (R05); "
            "give `country` when it lacks its country prefix.",
        ),
    ] = None,
    domain: Annotated[
        str | None,
        Query(
            max_length=253,
            pattern=LINE_PATTERN,
            description="Find the customer with this web domain, normalised as at registration (R05).",
        ),
    ] = None,
    store_customer_id: Annotated[
        str | None,
        Query(
            max_length=255,
            pattern=LINE_PATTERN,
            description="Find the customer with this id in the vendor's store (R05).",
        ),
    ] = None,
    country: Annotated[
        str,
        Query(
            pattern=r"^[A-Za-z]{2}$",
            description="The country whose rules read a `vat_id` given without its country prefix (`XX`: none).",
        ),
    ] = "XX",
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> CustomerPage:
    """Admin (read). By name, or by one normalised identifier."""
    identifier: Identifier | None = None
    if vat_id and (value := normalise_vat(vat_id, country)):
        identifier = Identifier("vat", value)
    elif domain and (value := normalise_domain(domain)):
        identifier = Identifier("domain", value)
    elif store_customer_id and (value := normalise_store_id(store_customer_id)):
        identifier = Identifier("store_id", value)
    elif vat_id or domain or store_customer_id:
        raise Invalid("The identifier is not valid.", code="identifier_invalid")
    rows = await customers.search(
        session, q=q or None, identifier=identifier, limit=limit + 1, after=convert.decode_uuid_cursor(cursor)
    )
    page = rows[:limit]
    held = await customers.identifiers_of(session, [r.id for r in page])
    return CustomerPage(
        items=[_customer_of(r, held[r.id]) for r in page],
        next_cursor=convert.encode_cursor(page[-1].id) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


@router.get("/{customer_id}", responses=problem_responses(401, 403, 404, 422), summary="Read a customer")
async def get_customer(customer_id: CustomerPath, session: SessionDep, _admin: AdminRead) -> Customer:
    """Admin (read)."""
    return await _customer(session, await customers.get(session, customer_id))


@router.put(
    "/{customer_id}/sales-process",
    responses=problem_responses(401, 403, 404, 422),
    summary="Flag an active sales process",
)
async def flag_sales_process(
    customer_id: CustomerPath,
    body: SalesProcessFlag,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> Customer:
    """Admin (write). Until `until`, partners cannot register this customer (R06)."""
    row = await customers.flag_sales_process(
        session, context(request, admin, clock), customer_id, until=body.until, reason=body.reason
    )
    return await _customer(session, row)


@router.delete(
    "/{customer_id}/sales-process",
    responses=problem_responses(401, 403, 404, 422),
    summary="End an active sales process",
)
async def unflag_sales_process(
    customer_id: CustomerPath, request: Request, session: SessionDep, clock: ClockDep, admin: AdminWrite
) -> Customer:
    """Admin (write)."""
    row = await customers.unflag_sales_process(session, context(request, admin, clock), customer_id)
    return await _customer(session, row)


refusals_router = APIRouter(prefix="/v1/registration-refusals", tags=["customers"])


@refusals_router.get("", responses=problem_responses(401, 403, 422), summary="Refused registrations")
async def list_registration_refusals(
    session: SessionDep,
    _admin: AdminRead,
    partner_id: Annotated[
        uuid.UUID | None, Query(description="Only the refusals of this partner's registrations.")
    ] = None,
    code: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[a-z_]+$", description="Only the refusals with this reason code."),
    ] = None,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(200)] = 50,
) -> RegistrationRefusalPage:
    """Admin (read). R06: every refused registration, who, which customer and why; newest first."""
    rows = await registrations.refusals(
        session, partner_id=partner_id, code=code, before_id=convert.decode_int_cursor(cursor), limit=limit + 1
    )
    return RegistrationRefusalPage(**convert.id_page(rows, limit, RegistrationRefusal))
