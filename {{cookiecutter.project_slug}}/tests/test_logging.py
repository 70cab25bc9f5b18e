import json
import logging
import sys

import pytest

from {{ cookiecutter.package_name }}.observability.logging import (
    DropUvicornTraceback,
    JsonFormatter,
    access_logger,
    setup_logging,
)
from {{ cookiecutter.package_name }}.observability.request_id import request_id_var
from {{ cookiecutter.package_name }}.settings import Settings


def record(name: str, msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args or None, None)
    made.__dict__.update(extra)
    return made


def test_a_line_is_one_json_object_with_the_standard_fields() -> None:
    made = record("svc", "hello %s", "world", user_id=7, color_message="\x1b[36mhello\x1b[0m")
    line = JsonFormatter().format(made)
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "svc"
    assert entry["message"] == "hello world"
    assert entry["user_id"] == 7
    assert "color_message" not in entry
    assert entry["timestamp"].endswith("+00:00")
    assert "\n" not in line


def test_the_request_id_is_added_inside_a_request() -> None:
    token = request_id_var.set("req-1")
    try:
        entry = json.loads(JsonFormatter().format(record("svc", "inside")))
    finally:
        request_id_var.reset(token)
    assert entry["request_id"] == "req-1"


def test_exceptions_are_logged_with_their_traceback() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        made = logging.LogRecord("svc", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(made))
    assert entry["exception"].startswith("Traceback")
    assert "ValueError: broken" in entry["exception"]


def test_fields_named_like_secrets_are_redacted() -> None:
    made = record("svc", "login", password="hunter2", api_key="k", user="ann")
    entry = json.loads(JsonFormatter().format(made))
    assert entry["password"] == entry["api_key"] == "[redacted]"
    assert entry["user"] == "ann"


def test_the_access_line_goes_through_logging_with_the_same_formatter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging(Settings(_env_file=None))
    token = request_id_var.set("req-2")
    try:
        fields = {"method": 'GE"T', "route": None, "status": 404, "client": 'bad"\\client\n'}
        access_logger.info("request", extra={**fields, "duration_ms": 12.34})
    finally:
        request_id_var.reset(token)
    entry = json.loads(capsys.readouterr().out)
    assert entry["logger"] == "access" and entry["message"] == "request"
    assert entry["request_id"] == "req-2" and entry["level"] == "INFO"
    assert {key: entry[key] for key in fields} == fields
    assert entry["duration_ms"] == 12.34


def test_setup_routes_uvicorn_loggers_through_the_root_json_handler() -> None:
    logging.getLogger("uvicorn.access").addHandler(logging.NullHandler())
    setup_logging(Settings(_env_file=None, log_level="warning"))
    root = logging.getLogger()
    assert root.level == logging.WARNING
    assert len(root.handlers) == 1
    assert isinstance(root.handlers[0].formatter, JsonFormatter)
    assert logging.getLogger("uvicorn.error").propagate
    uvicorn_access = logging.getLogger("uvicorn.access")  # ours replaces it
    assert uvicorn_access.handlers == []
    assert not uvicorn_access.propagate
    setup_logging(Settings(_env_file=None))


def test_uvicorn_repeat_of_a_logged_traceback_is_dropped_unless_debugging() -> None:
    repeat = record("uvicorn.error", "Exception in ASGI application")
    assert not DropUvicornTraceback().filter(repeat)
    assert DropUvicornTraceback().filter(record("uvicorn.error", "Started server process"))
    setup_logging(Settings(_env_file=None, debug=True))
    assert logging.getLogger("uvicorn.error").filters == []
    setup_logging(Settings(_env_file=None))
    assert len(logging.getLogger("uvicorn.error").filters) == 1
