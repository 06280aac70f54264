"""The account page of every signed-in user: name, time zone, and which notifications come by mail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.domain import people
from app.domain.errors import DomainError
from app.routers.deps import ClockDep, SessionDep, context
from app.routers.pages.common import (
    PostedBy,
    Viewer,
    actor_of,
    errors_of,
    render,
)

router = APIRouter(include_in_schema=False)


NOTIFICATIONS = (
    ("partner_approved", "my partner is approved"),
    ("lead_offered", "a lead is offered to my partner"),
    ("registration_expiring", "a registration is about to expire"),
    ("registration_expired", "a registration expired"),
    ("statement_ready", "a statement is approved"),
    ("statement_paid", "a statement is paid"),
    ("level_changed", "my partner's level changes"),
    ("directory_reviewed", "our directory text is approved or rejected"),
    ("payee_changed", "our payee details change (owners)"),
)
"""The notifications a user can turn off, as the account page words them."""


def _account_page(viewer: people.Current, status_code: int = 200, **values: Any) -> HTMLResponse:
    user = viewer.user
    return render(
        "account.html",
        status_code,
        user=user,
        csrf=viewer.row.csrf_token,
        area="account",
        notifications=NOTIFICATIONS,
        off={k for k, on in user.notifications.items() if not on},
        **{"values": {"name": user.name or "", "time_zone": user.time_zone}, **values},
    )


@router.get("/account", response_class=HTMLResponse)
async def account_page(viewer: Viewer) -> Response:
    return _account_page(viewer)


@router.post("/account", response_class=HTMLResponse)
async def save_account(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    posted: PostedBy,
    name: Annotated[str, Form(max_length=200)] = "",
    time_zone: Annotated[str, Form(max_length=64)] = "",
    notify: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The user's name, time zone and notifications: a box left unticked turns that one off."""
    actor = actor_of(posted)
    ctx = context(request, actor.caller, clock)
    chosen = set(notify or [])
    try:
        async with session.begin_nested():
            user = await people.update(
                session, ctx, actor, posted.user.id, name=name.strip() or None, time_zone=time_zone.strip() or None
            )
            await people.set_notifications(session, ctx, user, {k: k in chosen for k, _ in NOTIFICATIONS})
    except DomainError as refusal:
        values = {"name": name, "time_zone": time_zone}
        return _account_page(posted, 400, values=values, problem=refusal.detail, errors=errors_of(refusal))
    return _account_page(posted, notice="Saved.")
