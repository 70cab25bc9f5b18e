"""JSON logs: one object per line on stdout, uvicorn's own lines included (but its access log:
ours, from the observability middleware, has the route, the duration and the trace id).

Fields: timestamp, level, logger, message, request_id (inside a request), trace_id and span_id
(inside a sampled request), any `extra=` fields (those named like a secret are redacted), and
`exception` with the traceback when there is one.

The access log (one line per request, written by the observability middleware) is buffered:
it is written in blocks, flushed every second by the lifespan, and at shutdown.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from ..settings import Settings
from .request_id import request_id_var

# Attributes every LogRecord has (and uvicorn's ANSI-coloured copy of its message): anything
# else on a record came from `extra=`.
STANDARD_ATTRIBUTES = frozenset(
    set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
    | {"message", "asctime", "color_message"}
)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error")
SECRET_WORDS = ("password", "secret", "token", "authorization", "cookie", "api_key")
ACCESS_LOGGER = "access"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRIBUTES:
                secret = any(word in key.lower() for word in SECRET_WORDS)
                entry[key] = "[redacted]" if secret else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class DropUvicornTraceback(logging.Filter):
    """uvicorn logs every unhandled exception again after our 500 handler logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Exception in ASGI application"


class BufferedHandler(logging.StreamHandler[TextIO]):
    """Keeps lines in memory and writes them in one block: a write per line costs a syscall.

    Flushed when 256 lines are waiting, by the lifespan every second, and at shutdown.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pending.append(self.format(record) + "\n")
        except Exception:  # a logging failure must not fail the request
            self.handleError(record)
        if len(self.pending) >= 256:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            lines, self.pending = self.pending, []
            self.stream.write("".join(lines))
            self.stream.flush()


def flush_access_log() -> None:
    for handler in logging.getLogger(ACCESS_LOGGER).handlers:
        handler.flush()


def setup_logging(settings: Settings) -> None:
    """Send every logger, uvicorn's included, through one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers = []
    uvicorn_access.propagate = False
    access = logging.getLogger(ACCESS_LOGGER)
    access.handlers = [BufferedHandler()]
    access.handlers[0].setFormatter(JsonFormatter())
    access.propagate = False
    access.setLevel(logging.INFO if settings.access_log else logging.WARNING)
    error_logger = logging.getLogger("uvicorn.error")
    error_logger.filters = [] if settings.debug else [DropUvicornTraceback()]
