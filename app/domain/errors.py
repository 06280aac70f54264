"""Refusals raised by use cases. They know nothing of HTTP: app/errors.py maps them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule refused the request. `code` is stable and machine-readable."""

    code: str = "domain_error"
    title: str = "The request was refused"

    def __init__(self, detail: str, *, code: str | None = None, keep_writes: bool = False, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.keep_writes = keep_writes
        """Commit what the use case wrote before refusing (the record of the refusal itself)."""
        self.extra = extra


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate, a taken name)."""

    code = "conflict"
    title = "Conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "Not allowed in the current state"


class Invalid(DomainError):
    """The input is well-formed but a rule finds it unacceptable."""

    code = "invalid"
    title = "Invalid request"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class RateLimited(DomainError):
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, keep_writes: bool = False) -> None:
        super().__init__(detail, keep_writes=keep_writes)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """Not now: the answer depends on work still under way; the caller asks again after `retry_after`."""

    code = "unavailable"
    title = "Try again shortly"

    def __init__(self, detail: str, *, code: str, retry_after: int) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after
