"""Quarterly statements and payouts (R16), manual adjustments, and the program overview."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import tables
from app.domain import dashboards, statements
from app.domain.context import Context
from app.domain.rules.quarters import Quarter
from app.errors import problem_responses
from app.routers import convert
from app.routers.csv_export import CSV_RESPONSE, csv_response
from app.routers.deps import AdminRead, AdminWrite, ClockDep, PartnerOrAdminRead, SessionDep, context
from app.routers.fields import Cursor, PartnerPath, StatementPath, UtcDatetime, page_size
from app.routers.idempotency import IdempotencyDep
from app.routers.schemas.common import Count
from app.routers.schemas.statements import (
    Adjustment,
    AdjustmentOut,
    BulkApproval,
    BulkPayment,
    OverdueQuarter,
    OverdueQuarterPage,
    PaidStatementOut,
    Payment,
    PayoutForecast,
    PayoutForecastList,
    ProgramOverview,
    QuarterCloseOut,
    QuarterList,
    QuarterMoney,
    QuarterName,
    QuarterOut,
    StatementLineOut,
    StatementList,
    StatementOut,
    StatementSearch,
    StatementStatusName,
    TopPartner,
)

router = APIRouter(prefix="/v1", tags=["statements"])
QuarterPath = Annotated[
    str,
    Path(
        pattern=r"^(19|2\d)\d\d-Q[1-4]$",
        examples=["2026-Q1"],
        description="A calendar quarter of the program's time zone, as `YYYY-Qn`.",
    ),
]
CSV_LINE_COLUMNS = (
    "statement_id",
    "quarter",
    "currency",
    "money_entry_id",
    "effective_at",
    "order_id",
    "customer",
    "rule",
    "amount",
    "label",
    "explanation",
)


def _statement(row: tables.Statement, lines: list[statements.Line] | None = None) -> StatementOut:
    return StatementOut(
        id=row.id,
        partner_id=row.partner_id,
        quarter=row.quarter,
        currency=row.currency,
        status=row.status,
        opening_balance=row.opening_balance,
        lines_total=row.lines_total,
        closing_balance=row.closing_balance,
        payable_amount=row.payable_amount,
        payout_date=row.payout_date.date(),
        created_at=row.created_at,
        approved_at=row.approved_at,
        paid_at=row.paid_at,
        payment_reference=row.payment_reference,
        lines=None
        if lines is None
        else [
            StatementLineOut(
                money_entry_id=line.entry.id or 0,
                effective_at=line.entry.effective_at,
                order_id=line.entry.order_id,
                customer=line.company,
                rule=line.entry.rule,
                amount=line.amount,
                label=line.label,
                explanation=line.entry.explanation,
            )
            for line in lines
        ],
    )


def _csv(rows: list[list[object]], header: tuple[str, ...], filename: str) -> PlainTextResponse:
    return csv_response(header, rows, filename)


def _parse_quarter(text: str) -> Quarter:
    return Quarter.parse(text)


@router.post(
    "/quarters/{quarter}/close",
    responses=problem_responses(401, 403, 409, 422),
    summary="Close a quarter",
)
async def close_quarter(
    quarter: QuarterPath,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> QuarterCloseOut:
    """Admin (write). Produces every statement of the quarter; closing again returns them unchanged.
    Accepts `Idempotency-Key`."""

    async def work() -> QuarterCloseOut:
        result = await statements.close_quarter(session, context(request, admin, clock), _parse_quarter(quarter))
        body = QuarterCloseOut(
            quarter=str(result.quarter),
            closed_now=result.closed_now,
            statements=[_statement(s) for s in result.statements],
        )
        return body

    return await idempotency.respond(session, 200, work)


@router.get("/quarters", responses=problem_responses(401, 403), summary="Closed quarters")
async def list_quarters(session: SessionDep, _admin: AdminRead) -> QuarterList:
    """Admin (read). Oldest first."""
    return QuarterList(
        items=[QuarterOut.model_validate(c, from_attributes=True) for c in await statements.closes(session)]
    )


@router.get(
    "/quarters/overdue",
    responses=problem_responses(401, 403, 422),
    summary="Quarters not closed after their payout date",
)
async def list_overdue_quarters(
    session: SessionDep,
    clock: ClockDep,
    _admin: AdminRead,
    cursor: Cursor = None,
    limit: Annotated[int, page_size(1000)] = 100,
) -> OverdueQuarterPage:
    """Admin (read). R16: each quarter still not closed after its payout date that holds payable
    entries, by partner and currency, with what its statement would pay if closed now; oldest quarter
    first. Closing the quarter (`POST /v1/quarters/{quarter}/close`) takes it off the list."""
    after = convert.decode_overdue_quarter_cursor(cursor)
    rows = [
        r
        for r in await statements.overdue_quarters(session, clock.now())
        if after is None or (r.quarter, str(r.partner_id), r.currency) > after
    ]
    page = rows[:limit]
    return OverdueQuarterPage(
        items=[OverdueQuarter(**r.__dict__) for r in page],
        next_cursor=convert.encode_cursor(page[-1].quarter, page[-1].partner_id, page[-1].currency)
        if len(rows) > limit
        else None,
        has_more=len(rows) > limit,
    )


@router.get(
    "/quarters/{quarter}/statements.csv",
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 422)},
    response_class=PlainTextResponse,
    summary="Export a quarter's statements (CSV)",
)
async def export_quarter_csv(quarter: QuarterPath, session: SessionDep, _admin: AdminRead) -> PlainTextResponse:
    """Admin (read). One row per statement, for finance."""
    rows: list[list[object]] = [
        [
            s.id,
            s.partner_id,
            company,
            s.currency,
            s.status,
            s.opening_balance,
            s.lines_total,
            s.closing_balance,
            s.payable_amount,
            s.payout_date.date().isoformat(),
            s.payment_reference or "",
        ]
        for s, company in await statements.quarter_export(session, quarter)
    ]
    header = (
        "statement_id",
        "partner_id",
        "company",
        "currency",
        "status",
        "opening_balance",
        "lines_total",
        "closing_balance",
        "payable_amount",
        "payout_date",
        "payment_reference",
    )
    return _csv(rows, header, f"statements-{quarter}.csv")


@router.get("/statements", responses=problem_responses(401, 403, 422), summary="Find statements")
async def list_statements(
    session: SessionDep,
    clock: ClockDep,
    _admin: AdminRead,
    quarter: Annotated[
        QuarterName | None, Query(description="Only the statements of this quarter (`YYYY-Qn`).")
    ] = None,
    status: Annotated[StatementStatusName | None, Query(description="Only the statements in this status.")] = None,
    partner_id: Annotated[uuid.UUID | None, Query(description="Only this partner's statements.")] = None,
    overdue: Annotated[
        bool | None,
        Query(
            description="true: statements not marked paid by their payout date, drafts and approved ones (R16); "
            "false: the others."
        ),
    ] = None,
    limit: Annotated[int, page_size(10_000)] = 500,
) -> StatementSearch:
    """Admin (read). Newest quarter first."""
    if overdue:
        late = [
            r
            for r in await statements.overdue(
                session, clock.now(), limit=limit + 1, partner_id=partner_id, status=status
            )
            if quarter is None or r.quarter == quarter
        ]
        return StatementSearch(items=[_statement(r) for r in late[:limit]], has_more=len(late) > limit)
    rows = await statements.search(session, partner_id=partner_id, quarter=quarter, status=status, limit=limit + 1)
    if overdue is False:
        overdue_ids = {
            s.id for s in await statements.overdue(session, clock.now(), limit=10_000, partner_id=partner_id)
        }
        rows = [r for r in rows if r.id not in overdue_ids]
    return StatementSearch(items=[_statement(r) for r in rows[:limit]], has_more=len(rows) > limit)


async def _approve(session: AsyncSession, ctx: Context, statement_id: uuid.UUID) -> StatementOut:
    return _statement(await statements.approve(session, ctx, statement_id))


async def _pay(session: AsyncSession, ctx: Context, statement_id: uuid.UUID, payment: Payment) -> PaidStatementOut:
    row = await statements.mark_paid(
        session, ctx, statement_id, reference=payment.payment_reference, paid_on=payment.paid_on
    )
    return PaidStatementOut.model_validate(_statement(row).model_dump())


@router.post(
    "/statements/{statement_id}/approve",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Approve a statement",
)
async def approve_statement(
    statement_id: StatementPath,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> StatementOut:
    """Admin (write). Draft to approved. Accepts `Idempotency-Key`."""

    async def work() -> StatementOut:
        return await _approve(session, context(request, admin, clock), statement_id)

    return await idempotency.respond(session, 200, work)


@router.post(
    "/statements/{statement_id}/mark-paid",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Mark a statement paid",
)
async def mark_statement_paid(
    statement_id: StatementPath,
    payment: Payment,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> PaidStatementOut:
    """Admin (write). Approved to paid, with the payment reference. Accepts `Idempotency-Key`."""

    async def work() -> PaidStatementOut:
        return await _pay(session, context(request, admin, clock), statement_id, payment)

    return await idempotency.respond(session, 200, work)


@router.post(
    "/statements/bulk-approve", responses=problem_responses(401, 403, 404, 409, 422), summary="Approve statements"
)
async def bulk_approve_statements(
    approval: BulkApproval,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> list[StatementOut]:
    """Admin (write). All or none. Accepts `Idempotency-Key`."""

    async def work() -> list[StatementOut]:
        ctx = context(request, admin, clock)
        await statements.lock_for_bulk(session, approval.statement_ids)
        return [await _approve(session, ctx, sid) for sid in dict.fromkeys(approval.statement_ids)]

    return await idempotency.respond(session, 200, work)


@router.post(
    "/statements/bulk-mark-paid", responses=problem_responses(401, 403, 404, 409, 422), summary="Mark statements paid"
)
async def bulk_mark_statements_paid(
    payments: BulkPayment,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> list[PaidStatementOut]:
    """Admin (write). All or none. Accepts `Idempotency-Key`."""

    async def work() -> list[PaidStatementOut]:
        ctx = context(request, admin, clock)
        await statements.lock_for_bulk(session, [p.statement_id for p in payments.payments])
        return [await _pay(session, ctx, p.statement_id, p) for p in payments.payments]

    return await idempotency.respond(session, 200, work)


# --- the partner's view ----------------------------------------------------------------------------------


@router.get(
    "/partners/{partner_id}/statements",
    responses=problem_responses(401, 403, 404, 422),
    summary="A partner's statements",
)
async def list_partner_statements(
    partner_id: PartnerPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> StatementList:
    """The partner itself or an admin (read). Newest first, without lines."""
    return StatementList(items=[_statement(r) for r in await statements.search(session, partner_id=partner_id)])


@router.get(
    "/partners/{partner_id}/statements/{statement_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="Read a statement",
)
async def get_partner_statement(
    partner_id: PartnerPath, statement_id: StatementPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> StatementOut:
    """With its lines: order, customer, rule and amount of each entry."""
    row = await statements.get(session, statement_id, partner_id=partner_id)
    return _statement(row, (await statements.lines(session, [row.id])).get(row.id, []))


@router.get(
    "/partners/{partner_id}/statements/{statement_id}/csv",
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 404, 422)},
    response_class=PlainTextResponse,
    summary="Read a statement (CSV)",
)
async def get_partner_statement_csv(
    partner_id: PartnerPath, statement_id: StatementPath, session: SessionDep, _caller: PartnerOrAdminRead
) -> PlainTextResponse:
    """The statement's lines as CSV; the same figures as the JSON."""
    return await statement_csv(session, partner_id, statement_id)


async def statement_csv(session: AsyncSession, partner_id: uuid.UUID, statement_id: uuid.UUID) -> PlainTextResponse:
    """A partner's statement as CSV, a line per entry (the API's and the portal's download)."""
    row = await statements.get(session, statement_id, partner_id=partner_id)
    lines = (await statements.lines(session, [row.id])).get(row.id, [])
    rows: list[list[object]] = [
        [
            row.id,
            row.quarter,
            row.currency,
            line.entry.id,
            line.entry.effective_at.isoformat(),
            line.entry.order_id or "",
            line.company or "",
            line.entry.rule,
            line.amount,
            line.label or "",
            line.entry.explanation,
        ]
        for line in lines
    ]
    return _csv(rows, CSV_LINE_COLUMNS, f"statement-{row.quarter}-{row.currency}.csv")


@router.get(
    "/partners/{partner_id}/payout-forecast",
    responses=problem_responses(401, 403, 404, 422),
    summary="Next payout",
)
async def get_payout_forecast(
    partner_id: PartnerPath, session: SessionDep, clock: ClockDep, _caller: PartnerOrAdminRead
) -> PayoutForecastList:
    """Per currency: the next payout date and the amount expected then."""
    return PayoutForecastList(
        items=[
            PayoutForecast(
                currency=f.currency,
                payout_date=f.payout_date,
                expected_amount=f.amount,
                unpaid_statements=[s.id for s in f.statements],
                accruing=f.accruing,
            )
            for f in await statements.forecast(session, partner_id, clock.now())
        ]
    )


@router.post(
    "/partners/{partner_id}/adjustments",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
    summary="Post a manual adjustment",
)
async def post_adjustment(
    partner_id: PartnerPath,
    adjustment: Adjustment,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
    idempotency: IdempotencyDep,
) -> AdjustmentOut:
    """Admin (write). Points or money, positive or negative, with a reason: an entry like any other,
    audited and shown to the partner. Accepts `Idempotency-Key`."""

    async def work() -> AdjustmentOut:
        entry = await statements.adjust(
            session,
            context(request, admin, clock),
            partner_id,
            kind=adjustment.kind,
            amount=adjustment.amount,
            currency=adjustment.currency,
            reason=adjustment.reason,
        )
        assert isinstance(entry, tables.PointsEntry | tables.MoneyEntry) and entry.id is not None
        body = AdjustmentOut(
            kind=adjustment.kind,
            entry_id=entry.id,
            amount=adjustment.amount,
            currency=adjustment.currency,
            effective_at=entry.effective_at,
        )
        return body

    return await idempotency.respond(session, 201, work)


@router.get(
    "/dashboards/overview", tags=["dashboards"], responses=problem_responses(401, 403, 422), summary="Program overview"
)
async def get_program_overview(
    session: SessionDep,
    clock: ClockDep,
    _admin: AdminRead,
    from_: Annotated[
        UtcDatetime | None,
        Query(alias="from", description="Dated figures from this time on; commission from its quarter on."),
    ] = None,
    to: Annotated[
        UtcDatetime | None,
        Query(description="Dated figures before this time (exclusive); commission up to and including its quarter."),
    ] = None,
) -> ProgramOverview:
    """Admin (read). Figures with a date (partners created, registrations, refusals, parked events,
    mismatches, commission quarters) follow `from`/`to`; balances and tops are current."""
    o = await dashboards.overview(session, now=clock.now(), start=from_, end=to)
    return ProgramOverview(
        partners_by_level=o.partners_by_level,
        partners_by_status=o.partners_by_status,
        points_distribution=[Count(key=k, count=v) for k, v in o.points_distribution],
        commissions=[QuarterMoney(**c) for c in o.commissions],
        registrations_by_state=o.registrations_by_state,
        refusals_by_reason=o.refusals_by_reason,
        parked_webhook_events=o.parked_webhook_events,
        discount_mismatches=o.discount_mismatches,
        order_flags=o.order_flags,
        overdue_statements=o.overdue_statements,
        overdue_quarters=o.overdue_quarters,
        top_partners_by_points=[TopPartner(**t) for t in o.top_partners_by_points],
        top_partners_by_commission=[TopPartner(**t) for t in o.top_partners_by_commission],
        authentication_refusals=o.authentication_refusals,
    )
