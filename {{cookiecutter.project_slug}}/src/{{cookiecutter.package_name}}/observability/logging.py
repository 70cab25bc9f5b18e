"""JSON logs: one object per line on stdout, uvicorn's own lines included (but its access log:
ours, from the observability middleware, has the route, the duration and the trace id).

Fields: timestamp, level, logger, message, request_id (inside a request), trace_id and span_id
(inside a sampled request), any `extra=` fields (those named like a secret are redacted), and
`exception` with the traceback when there is one.

The access log (one line per request, from the observability middleware) is `access_log`
below: buffered, written every second by the lifespan's flusher, and at shutdown.
"""

import json
import logging
import sys
import time
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii  # what json.dumps uses for a str
from typing import Any

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
ACCESS_LINE = (
    '{"timestamp": "%s", "level": "INFO", "logger": "access", "message": "request"%s, '
    '"method": %s, "route": %s, "status": %d, "duration_ms": %.2f, "client": %s}'
)


def add_correlation_ids(entry: dict[str, Any]) -> None:
    """The request id, and the trace and span ids inside a sampled request."""
    request_id = request_id_var.get()
    if request_id:
        entry["request_id"] = request_id
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        entry["trace_id"] = format(span.trace_id, "032x")
        entry["span_id"] = format(span.span_id, "016x")


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
        add_correlation_ids(entry)
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


class AccessLog:
    """One JSON line per request, kept in memory and written in blocks (a write per line costs a
    syscall): when 256 lines wait, every second (the lifespan's flusher) and at shutdown.

    The line is formatted here, not through a LogRecord and a dict: logging's record machinery
    and json.dumps cost several times the line itself. The same fields as JsonFormatter's;
    the strings that come from the request (method, client) are JSON-escaped.
    """

    def __init__(self) -> None:
        self.enabled = True
        self.pending: list[str] = []
        self.second = -1
        self.second_text = ""

    def timestamp(self, now: float) -> str:
        """As JsonFormatter writes it (ISO 8601, milliseconds, UTC); the seconds part cached."""
        second = int(now)
        if second != self.second:
            self.second = second
            self.second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return "%s.%03d+00:00" % (self.second_text, (now - second) * 1000)

    def write(
        self, method: str, route: str | None, status: int, seconds: float, client: str | None
    ) -> None:
        quoted = QUOTED.get(method) or quote(method), QUOTED.get(route) or self.quote_route(route)
        fields = (*quoted, status, seconds * 1000, quote(client))
        stamp = self.timestamp(time.time())
        self.pending.append(ACCESS_LINE % (stamp, correlation_ids(), *fields))
        if len(self.pending) >= 256:
            self.flush()

    @staticmethod
    def quote_route(route: str | None) -> str:
        QUOTED[route] = quote(route)  # route templates: a bounded set
        return QUOTED[route]

    def flush(self) -> None:
        if self.pending:
            lines, self.pending = self.pending, []
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()


def quote(text: str | None) -> str:
    return "null" if text is None else encode_basestring_ascii(text)


# JSON strings made once: the usual methods, then each route template as it is first seen.
QUOTED: dict[str | None, str] = {
    method: quote(method) for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
}


def correlation_ids() -> str:
    """The request id and trace ids as JSON members: letters, digits and ._:- only (the request
    id is checked on the way in), nothing to escape."""
    request_id = request_id_var.get()
    ids = f', "request_id": "{request_id}"' if request_id else ""
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        ids += f', "trace_id": "{span.trace_id:032x}", "span_id": "{span.span_id:016x}"'
    return ids


access_log = AccessLog()


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
    access_log.enabled = settings.access_log
    error_logger = logging.getLogger("uvicorn.error")
    error_logger.filters = [] if settings.debug else [DropUvicornTraceback()]
