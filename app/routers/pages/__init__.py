"""Pages people use, server-rendered by the app (Jinja2), every asset served by the app itself: the public
pages (sign-in, invitation, password reset), the partner portal (`/portal`), the account page and the
program console (`/console`). They call the same use cases as the API, with the sessions, CSRF tokens and
role table of `app.domain.people`. Every page works without JavaScript; forms keep what was typed after a
refusal and say what to fix next to the field."""

from fastapi import APIRouter

from app.routers.pages import account, apply, console, portal, public
from app.routers.pages.common import SignInFirst, answering_pages, sign_in_first

router = APIRouter(include_in_schema=False)
for part in (public, apply, portal, account, console):
    router.include_router(part.router)

__all__ = ["SignInFirst", "answering_pages", "router", "sign_in_first"]
