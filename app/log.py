"""Logging: one JSON object per line in production, plain text in development; every line carries
the request id of the request it belongs to."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record was passed with `extra=` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
# Loggers whose lines go through the service's handler: its own, and uvicorn's server messages.
_LOGGERS = ("app", "uvicorn", "uvicorn.error")


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # A handler that runs outside the request's context (the 500 handler) names the id itself.
        record.request_id = getattr(record, "request_id", None) or request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", "request_id", ...extra fields, "exception"}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "-")
        if request_id != "-":
            line["request_id"] = request_id
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id] message key=value...`, the traceback below."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [request %(request_id)s] %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        return text + "".join(f" {k}={v}" for k, v in extra.items() if v is not None)


class _StandardError(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time (pytest swaps it per test)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(level: int, log_format: LogFormat = "text") -> None:
    """Send the service's logs (and uvicorn's) to standard error at `level`, in `log_format`.

    In `json`, every line of the process is JSON: the handler sits on the root logger, and the
    loggers that bring their own handlers (uvicorn's, in the parent process too) pass theirs up to it,
    so a library's warning (SQLAlchemy's, the OpenTelemetry exporter's) is a JSON line as well. In
    `text`, only the service's and uvicorn's lines go through it, for a terminal."""
    handler = _StandardError()
    handler._partners = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestId())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    if log_format == "json":
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(logging.WARNING)  # libraries speak up for warnings; the service's own level below
        for name in (*_LOGGERS, "uvicorn.access"):
            logger = logging.getLogger(name)
            for old in list(logger.handlers):
                logger.removeHandler(old)
            logger.propagate = True
        logging.getLogger("uvicorn").setLevel(level)
        logging.getLogger("app").setLevel(level)
        return
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if name == "app":
            for old in [h for h in logger.handlers if getattr(h, "_partners", False)]:
                logger.removeHandler(old)
            logger.addHandler(handler)
            logger.propagate = False
    logging.getLogger("app").setLevel(level)
