"""Logs: one line per record on stdout, through `logging` for every line: the service's,
uvicorn's and the access log's (logger "access", one line per request, written by the
observability middleware; uvicorn's own access log is off, ours has the route and duration).

Two formats of the same fields (LOG_FORMAT; by default console in development, json elsewhere):
- json, for a log pipeline: one object per line with timestamp, level, logger, message,
  request_id (inside a request), trace_id and span_id (inside a sampled request), any `extra=`
  fields, and `exception` with the traceback when there is one;
- console, for a terminal: `12:00:00.123 INFO     my_service.main  starting  version=1.0
  [req=...]`, the `extra=` fields as key=value, the traceback on the lines below.
Either way, `extra=` fields named like a secret are redacted.
"""

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from opentelemetry import trace

from ..settings import Settings
from .request_id import request_id_var

# Attributes every LogRecord has (and uvicorn's ANSI-coloured copy of its message): anything
# else on a record came from `extra=`.
STANDARD_ATTRIBUTES = frozenset(
    set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
    | {"message", "asctime", "color_message", "taskName"}
)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error")
SECRET_WORDS = ("password", "secret", "token", "authorization", "cookie", "api_key")
# Chatty at INFO (a line per call): failures and retries are logged by resilience/events.py.
QUIET_LOGGERS = ("httpx2", "httpcore2")

# A console value shown as is; any other is quoted as JSON (spaces, quotes, line breaks...).
PLAIN_VALUE = re.compile(r"[^\s\"'=\\\x00-\x1f\x7f]+")
CONSOLE_IDS = {"request_id": "req", "trace_id": "trace"}

access_logger = logging.getLogger("access")


def log_access(fields: dict[str, Any]) -> None:
    """The access line, as `access_logger.info("request", extra=fields)` writes it, without
    searching the stack for its caller (neither format prints it) nor checking each field's
    name against the record's attributes (the middleware's fields are not named like one)."""
    if access_logger.isEnabledFor(logging.INFO):
        # No file, line or function: the caller is always the middleware.
        record = access_logger.makeRecord("access", logging.INFO, "", 0, "request", (), None)
        vars(record).update(fields)  # what extra= does, but in one step
        access_logger.handle(record)


def add_correlation_ids(entry: dict[str, Any]) -> None:
    """The request id, and the trace and span ids inside a sampled request."""
    request_id = request_id_var.get()
    if request_id:
        entry["request_id"] = request_id
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        entry["trace_id"] = format(span.trace_id, "032x")
        entry["span_id"] = format(span.span_id, "016x")


@contextmanager
def request_context(state: Any) -> Iterator[None]:
    """The request's ids current again (from its request.state), for a handler that runs after
    the middlewares have reset them: Starlette's 500 handler."""
    token = request_id_var.set(getattr(state, "request_id", None))
    span = getattr(state, "span", None) or trace.INVALID_SPAN
    try:
        with trace.use_span(span, end_on_exit=False):
            yield
    finally:
        request_id_var.reset(token)


@lru_cache(maxsize=256)  # a program logs with a few sets of `extra=` names, again and again
def extra_names(names: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """Of a record's attribute names, those from `extra=`, each with whether it names a secret."""
    return tuple(
        (name, any(word in name.lower() for word in SECRET_WORDS))
        for name in names
        if name not in STANDARD_ATTRIBUTES
    )


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra=` fields, those named like a secret redacted."""
    attributes = vars(record)
    return {
        name: "[redacted]" if secret else attributes[name]
        for name, secret in extra_names(tuple(attributes))
    }


ENCODER = json.JSONEncoder(default=str)  # built once: json.dumps(default=) builds one a call


@lru_cache(maxsize=256)  # a program logs a few constant messages again and again
def json_head(level: str, logger: str, message: str) -> str:
    """A line's level, logger and message as JSON members, encoded once per set."""
    return ENCODER.encode({"level": level, "logger": logger, "message": message})[1:-1]


class JsonFormatter(logging.Formatter):
    """One JSON object per record, its timestamp in UTC to the millisecond."""

    encoder = ENCODER
    second = (-1, "")  # the last second formatted, and its text: a log line is rarely the first

    def timestamp(self, record: logging.LogRecord) -> str:
        # The second that msecs counts from (a float `created` can round up to the next one).
        whole = round(record.created - record.msecs / 1000)
        cached, text = self.second
        if whole != cached:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            self.second = (whole, text)
        return "%s.%03d+00:00" % (text, record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        # A constant message's head is cached; one made from args is new each time.
        encode_head = json_head.__wrapped__ if record.args else json_head
        head: str = encode_head(record.levelname, record.name, record.getMessage())
        entry: dict[str, Any] = {}
        add_correlation_ids(entry)
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # The timestamp is digits and punctuation only: nothing to escape.
        line = '{"timestamp": "%s", %s' % (self.timestamp(record), head)
        return f"{line}, {self.encoder.encode(entry)[1:]}" if entry else line + "}"


def console_value(value: Any) -> str:
    if isinstance(value, str) and PLAIN_VALUE.fullmatch(value):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """One readable line per record (local time): what a terminal shows in development."""

    def format(self, record: logging.LogRecord) -> str:
        time = self.formatTime(record, "%H:%M:%S")
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")
        parts = [f"{time}.{int(record.msecs):03d} {record.levelname:<8} {record.name}  {message}"]
        if extras := extra_fields(record):
            parts.append(" ".join(f"{key}={console_value(v)}" for key, v in extras.items()))
        ids: dict[str, Any] = {}
        add_correlation_ids(ids)
        if shown := [f"{CONSOLE_IDS[key]}={ids[key]}" for key in CONSOLE_IDS if key in ids]:
            parts.append(f"[{' '.join(shown)}]")
        line = "  ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


FORMATTERS: dict[str, type[logging.Formatter]] = {
    "console": ConsoleFormatter,
    "json": JsonFormatter,
}


class DropUvicornTraceback(logging.Filter):
    """uvicorn logs every unhandled exception again after our 500 handler logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Exception in ASGI application"


def setup_logging(settings: Settings) -> None:
    """Send every logger, uvicorn's included, through one handler on stdout (LOG_FORMAT)."""
    # Neither format prints the thread, the process or the asyncio task: no record looks them up.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    setattr(logging, "logAsyncioTasks", False)  # documented since 3.12, not yet in typeshed
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(FORMATTERS[settings.log_format]())
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
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    error_logger = logging.getLogger("uvicorn.error")
    error_logger.filters = [] if settings.debug else [DropUvicornTraceback()]
