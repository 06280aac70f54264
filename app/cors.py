"""Cross-origin access to the public directory, so the vendor's website can read and revalidate it
from a browser.

Only the public directory answers CORS: every other route is for API keys, which a browser page
must never hold. Allowed origins are a setting (`PARTNERS_CORS_ORIGINS`), none by default. The
preflight is answered here, `If-None-Match` may be sent and `ETag` is exposed, so the page can use
the directory's conditional GETs.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PREFIXES = ("/v1/directory",)
"""Paths that answer cross-origin requests: the public directory and anything below it."""


def is_public(path: str) -> bool:
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in PUBLIC_PREFIXES)


class PublicCorsMiddleware:
    """Starlette's CORS middleware, applied to the public paths alone."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "HEAD"],
            allow_headers=["If-None-Match"],
            expose_headers=["ETag", "Cache-Control"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_public(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
