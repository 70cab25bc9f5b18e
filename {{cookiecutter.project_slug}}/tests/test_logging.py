import json
import logging
import re
import sys
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.observability.logging import (
    ConsoleFormatter,
    DropUvicornTraceback,
    JsonFormatter,
    access_logger,
    json_head,
    log_access,
    setup_logging,
)
from {{ cookiecutter.package_name }}.observability.request_id import request_id_var
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings

from .conftest import production_settings


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


def test_a_line_is_what_json_dumps_makes_of_its_fields() -> None:
    for made in (record("svc", 'say "hi"\n', user="ann", ratio=1.5), record("svc", "bare")):
        line = JsonFormatter().format(made)
        assert line == json.dumps(json.loads(line))


def test_a_constant_messages_level_logger_and_message_are_encoded_once() -> None:
    json_head.cache_clear()
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(record("svc", "same", n=n))) for n in range(3)]
    assert (json_head.cache_info().misses, json_head.cache_info().hits) == (1, 2)
    assert [(line["message"], line["n"]) for line in lines] == [("same", n) for n in range(3)]
    made = record("svc", "hello %s", "world")  # a message made from args: new each time
    assert json.loads(formatter.format(made))["message"] == "hello world"
    assert json_head.cache_info().currsize == 1


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
    setup_logging(Settings(_env_file=None, log_format="json"))
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


def test_log_access_writes_the_line_logger_info_writes_and_obeys_the_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging(Settings(_env_file=None, log_format="json"))
    fields = {"method": "GET", "route": "/a", "status": 200, "authorization": "Bearer x"}
    token = request_id_var.set("req-4")
    try:
        access_logger.info("request", extra=fields)
        log_access(fields)
        access_logger.setLevel(logging.WARNING)
        log_access(fields)
    finally:
        access_logger.setLevel(logging.NOTSET)
        request_id_var.reset(token)
    by_info, by_log_access = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    del by_info["timestamp"], by_log_access["timestamp"]
    assert by_log_access == by_info
    assert by_info["request_id"] == "req-4" and by_info["authorization"] == "[redacted]"


@pytest.mark.parametrize("created", [0.0, 1.9996, 1_700_000_000.25, 1_700_000_001.5])
def test_the_timestamp_is_utc_to_the_millisecond_within_and_across_seconds(
    created: float,
) -> None:
    formatter = JsonFormatter()
    for moment in (created, created + 0.001, created + 1, created):  # the second cached, or not
        made = record("svc", "tick")
        made.created, made.msecs = moment, int(moment * 1000) % 1000
        expected = datetime.fromtimestamp(int(moment), UTC).replace(microsecond=made.msecs * 1000)
        stamp = json.loads(formatter.format(made))["timestamp"]
        assert stamp == expected.isoformat(timespec="milliseconds")


def test_the_timestamp_keeps_the_second_its_milliseconds_count_from() -> None:
    made = record("svc", "tick")  # a clock in nanoseconds: created rounded up, msecs not
    made.created, made.msecs = 1_700_000_000.0, 999.0
    stamp = json.loads(JsonFormatter().format(made))["timestamp"]
    assert stamp == "2023-11-14T22:13:19.999+00:00"


def test_setup_looks_up_no_thread_process_or_task_for_a_record() -> None:
    setup_logging(Settings(_env_file=None))
    made = record("svc", "plain")
    assert (made.thread, made.process, made.processName) == (None, None, None)
    assert vars(made).get("taskName") is None  # since Python 3.12


def test_setup_routes_uvicorn_loggers_through_the_root_json_handler() -> None:
    logging.getLogger("uvicorn.access").addHandler(logging.NullHandler())
    setup_logging(Settings(_env_file=None, log_level="warning", log_format="json"))
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


def test_a_console_line_is_readable_with_extras_and_the_request_id() -> None:
    made = record("svc.main", "starting %s", "up", version="1.0", password="hunter2", note="a b")
    token = request_id_var.set("req-3")
    try:
        line = ConsoleFormatter().format(made)
    finally:
        request_id_var.reset(token)
    pattern = r"\d\d:\d\d:\d\d\.\d{3} INFO +svc\.main  starting up  (.*)  \[req=req-3\]"
    extras = re.fullmatch(pattern, line)
    assert extras is not None, line
    assert extras[1] == 'version=1.0 password=[redacted] note="a b"'


def test_a_console_line_stays_one_line_and_its_traceback_follows_it() -> None:
    made = record("access", "request", route=None, status=404, client='bad"\\client\n')
    line = ConsoleFormatter().format(made)
    assert "\n" not in line
    assert line.endswith('route=null status=404 client="bad\\"\\\\client\\n"')
    try:
        raise ValueError("broken")
    except ValueError:
        failed = logging.LogRecord("svc", logging.ERROR, __file__, 1, "a\nb", None, sys.exc_info())
    first, *traceback = ConsoleFormatter().format(failed).splitlines()
    assert first.endswith("ERROR    svc  a\\nb")
    assert traceback[0].startswith("Traceback") and traceback[-1] == "ValueError: broken"


@pytest.mark.parametrize(
    ("environment", "log_format", "formatter"),
    [
        ("development", None, ConsoleFormatter),
        ("staging", None, JsonFormatter),
        ("production", None, JsonFormatter),
        ("development", "json", JsonFormatter),
        ("production", "console", ConsoleFormatter),
    ],
)
def test_the_format_follows_the_environment_unless_log_format_chooses(
    environment: str, log_format: str | None, formatter: type[logging.Formatter]
) -> None:
    chosen = {} if log_format is None else {"log_format": log_format}
    setup_logging(
        Settings(_env_file=None, **production_settings(environment=environment, **chosen))
    )
    assert isinstance(logging.getLogger().handlers[0].formatter, formatter)
    setup_logging(Settings(_env_file=None))


def test_log_format_is_read_from_its_variable_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}LOG_FORMAT", "")  # empty, as in .env.example: by environment
    assert Settings(_env_file=None).log_format == "console"
    monkeypatch.setenv(f"{ENV_PREFIX}LOG_FORMAT", "json")
    assert Settings(_env_file=None).log_format == "json"
    monkeypatch.setenv(f"{ENV_PREFIX}LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        Settings(_env_file=None)
