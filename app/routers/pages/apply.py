"""The partner application (`/apply`): the agreement in force shown and accepted, the form read by the
API's own request model and registered by the same use case as `POST /v1/partners`, so its rules and
refusals are the API's, said next to the field they concern."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import unit_of_work
from app.domain import agreements
from app.domain.clock import Clock
from app.domain.errors import Conflict, DomainError, NotFound, RateLimited
from app.domain.rules.partner_status import PartnerStatus
from app.routers.deps import ClockDep, SessionDep, SettingsDep, public_context
from app.routers.pages.common import errors_of, render, validated
from app.routers.partners import register_counted
from app.routers.schemas.partners import PartnerRegistration

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=2100)]
FIELD_OF = {"partner_already_registered": "contact_email"}
"""The field a refusal that names none is about."""
FIELDS = ("company", "country", "contact_name", "contact_email", "website", "vat_id", "languages")


async def _agreement(session: AsyncSession, clock: Clock) -> Any:
    try:
        return await agreements.current(session, clock.now())
    except NotFound:
        return None


def _page(agreement: Any, status_code: int = 200, **values: Any) -> HTMLResponse:
    return render(
        "apply.html",
        status_code,
        agreement=agreement,
        **{"values": dict.fromkeys(FIELDS, ""), "accepted": False, "done": None, **values},
    )


@router.get("/apply", response_class=HTMLResponse)
async def application_page(session: SessionDep, clock: ClockDep) -> Response:
    return _page(await _agreement(session, clock))


@router.post("/apply", response_class=HTMLResponse)
async def apply(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    company: Text = "",
    country: Text = "",
    contact_name: Text = "",
    contact_email: Text = "",
    website: Text = "",
    vat_id: Text = "",
    languages: Text = "",
    accept: Annotated[str, Form(max_length=50)] = "",
) -> Response:
    typed = {
        "company": company,
        "country": country,
        "contact_name": contact_name,
        "contact_email": contact_email,
        "website": website,
        "vat_id": vat_id,
        "languages": languages,
    }
    # Read apart from the request's session, whose first statement must follow the rate count's commit
    # (on SQLite a transaction that read before another connection wrote cannot write after it).
    async with unit_of_work(request.app.state.session_factory, purpose="the agreement in force") as reading:
        agreement = await _agreement(reading, clock)
    if agreement is None:
        return _page(None, 409, values=typed, problem="Applications open once the partner agreement is published.")
    body, errors = validated(
        PartnerRegistration,
        {
            "company": company.strip(),
            "country": country.strip(),
            "contact_name": contact_name.strip(),
            "contact_email": contact_email.strip(),
            "website": website.strip() or None,
            "vat_id": vat_id.strip() or None,
            "languages": [w for w in languages.replace(",", " ").split() if w],
            "accepted_agreement_version": agreement.version,
        },
    )
    if accept != agreement.version:  # the box ticked for the version shown, not an older page's
        errors["accept"] = f"Tick the box to accept the partner agreement {agreement.version}."
    if body is None or errors:
        problem = "Some answers need fixing: each is said next to its field."
        return _page(agreement, 422, values=typed, accepted=False, errors=errors, problem=problem)
    try:
        async with session.begin_nested():  # nothing of a refused registration stays but its count
            done = await register_counted(request, session, public_context(request, clock), settings, body)
    except DomainError as refusal:
        status_code = 429 if isinstance(refusal, RateLimited) else 409 if isinstance(refusal, Conflict) else 422
        errors = errors_of(refusal) or {FIELD_OF.get(refusal.code, "form"): refusal.detail}
        return _page(agreement, status_code, values=typed, accepted=True, errors=errors, problem=refusal.detail)
    return _page(
        agreement,
        201,
        done={
            "company": done.partner.company,
            "email": done.partner.contact_email,
            "active": done.partner.status == PartnerStatus.ACTIVE.value,
            "key": done.key.plaintext,
        },
    )
