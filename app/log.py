"""Logging for the service's own loggers, each line carrying the request id."""

from __future__ import annotations

import logging
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


def configure(level: int) -> None:
    """Send `app.*` logs to standard error at `level`, with the request id of the request they belong to."""
    logger = logging.getLogger("app")
    logger.setLevel(level)
    if not any(getattr(h, "_partners", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler._partners = True  # type: ignore[attr-defined]
        handler.addFilter(_RequestId())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [request %(request_id)s] %(message)s")
        )
        logger.addHandler(handler)
        logger.propagate = False
