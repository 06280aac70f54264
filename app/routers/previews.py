"""Terms-change previews: draft terms replayed over the program's history before they are published."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import TermsPreview as PreviewRow
from app.db.tables import TermsPreviewPartner
from app.domain import terms_preview
from app.domain.rules import terms_preview as rules
from app.domain.rules.quarters import Quarter
from app.domain.rules.terms import Terms
from app.errors import problem_responses
from app.routers import convert
from app.routers.csv_export import CSV_RESPONSE, csv_response
from app.routers.deps import AdminRead, AdminWrite, ClockDep, SessionDep, context
from app.routers.fields import Cursor, page_size
from app.routers.schemas.previews import (
    Figures,
    LevelFigures,
    ModelledField,
    ObservedFigures,
    PreviewPartner,
    PreviewPartnerPage,
    PreviewProgress,
    PreviewResult,
    QuarterFigures,
    TermsPreview,
    TermsPreviewPage,
    TermsPreviewRequest,
)

router = APIRouter(prefix="/v1", tags=["program"])

PreviewPath = Annotated[uuid.UUID, Path(description="The preview's id, as its answer gives it.")]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="A terms version's number.")]
MOST_AFFECTED = 10


@router.post(
    "/program/terms/preview",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 404, 422),
    summary="Preview draft terms",
)
async def preview_program_terms(
    body: TermsPreviewRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    admin: AdminWrite,
) -> TermsPreview:
    """Admin (write). Always a job: the answer is the preview, queued; poll its `url` until `status` is
    `done`. The worker replays the window's orders under the draft with the applier's own decisions,
    and compares every partner's level and discount now with those the draft gives at `effective_from`.
    Nothing of the program changes. Kept a day; the preview of a draft then published is kept with it."""
    row = await terms_preview.request(
        session,
        context(request, admin, clock),
        draft=body.terms,
        effective_from=body.effective_from,
        first_quarter=Quarter.parse(body.first_quarter) if body.first_quarter else None,
        last_quarter=Quarter.parse(body.last_quarter) if body.last_quarter else None,
    )
    response.headers["Location"] = _url(row)
    return await _preview(session, row, [])


@router.get("/program/terms/previews", responses=problem_responses(401, 403, 422), summary="List terms previews")
async def list_terms_previews(
    session: SessionDep,
    clock: ClockDep,
    _admin: AdminRead,
    limit: Annotated[int, page_size(100)] = 20,
    cursor: Cursor = None,
) -> TermsPreviewPage:
    """Admin (read). The previews still kept, newest first."""
    before = convert.decode_time_id_cursor(cursor)
    rows = await terms_preview.listing(session, clock.now(), limit=limit + 1, before=before)
    shown = rows[:limit]
    return TermsPreviewPage(
        items=[await _preview(session, r, None) for r in shown],
        next_cursor=convert.encode_cursor(shown[-1].created_at, shown[-1].id) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


@router.get(
    "/program/terms/previews/{preview_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="Read a terms preview",
)
async def get_terms_preview(
    preview_id: PreviewPath, session: SessionDep, clock: ClockDep, _admin: AdminRead
) -> TermsPreview:
    """Admin (read). Its progress while it runs; once done, who moves and what it costs, with the ten
    partners it affects most."""
    row = await terms_preview.get(session, preview_id, clock.now())
    return await _preview(session, row, await _most_affected(session, row))


@router.get(
    "/program/terms/previews/{preview_id}/partners",
    responses=problem_responses(401, 403, 404, 422),
    summary="A terms preview's partners",
)
async def list_terms_preview_partners(
    preview_id: PreviewPath,
    session: SessionDep,
    clock: ClockDep,
    _admin: AdminRead,
    limit: Annotated[int, page_size(1000)] = 100,
    cursor: Cursor = None,
) -> PreviewPartnerPage:
    """Admin (read). Every partner's figures, most affected first (empty until the preview is done)."""
    row = await terms_preview.get(session, preview_id, clock.now())
    after = convert.decode_int_cursor(cursor) or 0
    rows = await terms_preview.partners(session, row, after_rank=after, limit=limit + 1)
    shown = rows[:limit]
    return PreviewPartnerPage(
        items=[_partner(r) for r in shown],
        next_cursor=convert.encode_cursor(shown[-1].impact_rank) if len(rows) > limit else None,
        has_more=len(rows) > limit,
    )


CSV_HEADER = (
    "impact_rank",
    "partner_id",
    "company",
    "points_now",
    "points_lapsing",
    "points_at_effective_date",
    "points_recount",
    "level_now",
    "level_current_terms",
    "level_draft",
    "level_recount",
    "discount_bp_now",
    "discount_bp_draft",
    "currency",
    "commission_actual",
    "commission_draft",
    "commission_difference",
)


@router.get(
    "/program/terms/previews/{preview_id}/partners.csv",
    responses={**CSV_RESPONSE, **problem_responses(401, 403, 404, 422)},
    response_class=PlainTextResponse,
    summary="A terms preview's partners as CSV",
)
async def terms_preview_partners_csv(
    preview_id: PreviewPath, session: SessionDep, clock: ClockDep, _admin: AdminRead
) -> PlainTextResponse:
    """Admin (read). The per-partner table, most affected first: a line per partner and currency of its
    commission (one line with empty commission cells for a partner without any)."""
    row = await terms_preview.get(session, preview_id, clock.now())
    return await preview_partners_csv(session, row)


async def preview_partners_csv(session: AsyncSession, row: PreviewRow) -> PlainTextResponse:
    """A preview's partners as CSV, most affected first (the API's and the console's download)."""
    lines: list[list[object]] = []
    for r in await terms_preview.partners(session, row, after_rank=0, limit=None):
        standing = [
            r.impact_rank,
            r.partner_id,
            r.company,
            r.points_now,
            r.points_lapsing,
            r.points_now - r.points_lapsing,
            r.points_recount,
            r.level_now,
            r.level_current_terms,
            r.level_draft,
            r.level_recount,
            r.discount_bp_now,
            r.discount_bp_draft,
        ]
        money = sorted(r.commission.items()) or [("", None)]
        for currency, figures in money:
            if figures is None:
                lines.append([*standing, "", "", "", ""])
            else:
                actual, draft = figures["actual"], figures["draft"]
                lines.append([*standing, currency, actual, draft, draft - actual])
    return csv_response(CSV_HEADER, lines, f"terms-preview-{row.id}.csv")


@router.get(
    "/program/terms/versions/{version}/preview",
    responses=problem_responses(401, 403, 404, 422),
    summary="The preview of published terms",
)
async def get_published_terms_preview(
    version: VersionPath, session: SessionDep, clock: ClockDep, _admin: AdminRead
) -> TermsPreview:
    """Admin (read). The preview of the draft that became this version, kept with it, and beside it
    what the ledger holds from the effective date on (`observed`), quarter by quarter."""
    row = await terms_preview.of_version(session, version)
    observed = [
        ObservedFigures(quarter=q, currency=c, amount=a)
        for q, c, a in await terms_preview.observed(session, row, clock.now())
    ]
    answer = await _preview(session, row, await _most_affected(session, row))
    return answer.model_copy(update={"observed": observed})


# --- answers --------------------------------------------------------------------------------------------


def _url(row: PreviewRow) -> str:
    return f"/v1/program/terms/previews/{row.id}"


async def _most_affected(session: SessionDep, row: PreviewRow) -> list[PreviewPartner]:
    return [_partner(r) for r in await terms_preview.partners(session, row, after_rank=0, limit=MOST_AFFECTED)]


async def _preview(session: SessionDep, row: PreviewRow, most_affected: list[PreviewPartner] | None) -> TermsPreview:
    base = await terms_preview.base_terms(session, row)
    modelled, not_modelled = rules.changed_fields(base, Terms.model_validate(row.draft))
    result = row.result
    return TermsPreview(
        id=row.id,
        status=row.status,
        url=_url(row),
        partners_url=_url(row) + "/partners",
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expires_at=None if row.published_version is not None else row.expires_at,
        effective_from=row.effective_from,
        base_version=row.base_version,
        first_quarter=row.window_start,
        last_quarter=row.window_end,
        modelled=[ModelledField(field=name, what=rules.MODELLED[name]) for name in modelled],
        not_modelled=not_modelled,
        progress=PreviewProgress(orders_total=row.orders_total, orders_done=row.orders_done),
        result=_result(result, most_affected or []) if result is not None else None,
        error=row.error,
        published_version=row.published_version,
    )


def _figures(items: list[dict[str, Any]]) -> list[Figures]:
    return [Figures(**item) for item in items]


def _result(result: dict[str, Any], most_affected: list[PreviewPartner]) -> PreviewResult:
    return PreviewResult(
        partners=result["partners"],
        promotions=result["promotions"],
        demotions=result["demotions"],
        discounts_lowered=result["discounts_lowered"],
        discounts_raised=result["discounts_raised"],
        orders_replayed=result["orders_replayed"],
        orders_refused=result["orders_refused"],
        commission=_figures(result["commission"]),
        by_quarter=[QuarterFigures(**item) for item in result["by_quarter"]],
        by_level=[
            LevelFigures(
                level=item["level"],
                partners_now=item["partners_now"],
                partners_draft=item["partners_draft"],
                commission=_figures(item["commission"]),
            )
            for item in result["by_level"]
        ],
        most_affected=most_affected,
    )


def _partner(row: TermsPreviewPartner) -> PreviewPartner:
    return PreviewPartner(
        partner_id=row.partner_id,
        company=row.company,
        impact_rank=row.impact_rank,
        points_now=row.points_now,
        points_lapsing=row.points_lapsing,
        points_at_effective_date=row.points_now - row.points_lapsing,
        points_recount=row.points_recount,
        level_now=row.level_now,
        level_current_terms=row.level_current_terms,
        level_draft=row.level_draft,
        level_recount=row.level_recount,
        discount_bp_now=row.discount_bp_now,
        discount_bp_draft=row.discount_bp_draft,
        commission=[
            Figures(currency=c, actual=f["actual"], draft=f["draft"], difference=f["draft"] - f["actual"])
            for c, f in sorted(row.commission.items())
        ],
    )
