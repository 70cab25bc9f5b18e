"""JSON logs: one object per line on stdout, uvicorn's own lines included.

Fields: timestamp, level, logger, message, request_id (inside a request), any `extra=` fields,
and `exception` with the traceback when there is one.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from ..settings import Settings
from .request_id import request_id_var

# Attributes every LogRecord has (and uvicorn's ANSI-coloured copy of its message): anything
# else on a record came from `extra=`.
STANDARD_ATTRIBUTES = frozenset(
    set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
    | {"message", "asctime", "color_message"}
)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


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
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            entry.update(access_fields(record.args))
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    """uvicorn's access line arguments as fields: client, method, path, http, status."""
    if len(args) != 5:
        return {}
    return dict(zip(("client", "method", "path", "http_version", "status"), args))


class DropUvicornTraceback(logging.Filter):
    """uvicorn logs every unhandled exception again after our 500 handler logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Exception in ASGI application"


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
    error_logger = logging.getLogger("uvicorn.error")
    error_logger.filters = [] if settings.debug else [DropUvicornTraceback()]
