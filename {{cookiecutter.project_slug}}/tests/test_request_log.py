"""The access line and the lines a request logs, through the app: each carries the request's
trace and request ids; the access line names a bounded path, never a query, and can be off."""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from {{ cookiecutter.package_name }}.observability.logging import JsonFormatter

from .probe_app import TRACE_ID, build, requests_count, served


class Collect(logging.Handler):
    """Formats each record when it is logged, inside the request, as the real handler does."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(JsonFormatter().format(record)))


@contextmanager
def collected(name: str) -> Iterator[list[dict[str, Any]]]:
    """The lines `name` logs; enter it after create_app, which sets the handlers up."""
    handler = Collect()
    logging.getLogger(name).addHandler(handler)
    yield handler.lines
    logging.getLogger(name).removeHandler(handler)


def access_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if line["logger"] == "access"]


def test_a_500_is_logged_with_the_requests_trace_id(spans: InMemorySpanExporter) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "x-request-id": "req-500"}
    app = build(spans)
    with collected("{{ cookiecutter.package_name }}.errors") as lines:
        with served(app) as client:
            assert client.get("/probe/fail", headers=headers).status_code == 500
    [error] = lines
    assert (error["trace_id"], error["request_id"]) == (TRACE_ID, "req-500")


def test_log_lines_and_the_access_line_carry_the_trace_ids(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "x-request-id": "req-7"}
    app = build(spans)
    with collected("probe") as app_lines:
        with served(app) as client:
            client.get("/probe/items/3", headers=headers)
            client.get("/health/live")
    [span] = spans.get_finished_spans()
    [inside] = app_lines
    assert inside["trace_id"] == TRACE_ID
    assert inside["span_id"] == f"{span.context.span_id:016x}"
    assert inside["request_id"] == "req-7"
    [access] = access_lines(capsys)
    assert access["trace_id"] == TRACE_ID
    assert access["request_id"] == "req-7"
    assert access["route"] == "/probe/items/{item_id}"
    assert access["method"] == "GET" and access["status"] == 200
    assert access["duration_ms"] >= 0 and access["client"] == "testclient"


def test_the_access_line_of_an_unmatched_path_names_the_path_but_never_its_query(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = requests_count("none", "4xx")
    long_path = "/x" * 100
    with served(build()) as client:
        client.get("/no/such/page?token=s3cret")
        client.get(long_path)
    missing, too_long = access_lines(capsys)
    assert (missing["route"], missing["status"]) == ("/no/such/page", 404)
    assert too_long["route"] == long_path[:100]  # bounded: a scanner's paths stay short
    assert requests_count("none", "4xx") == before + 2  # the metrics keep one label for them


def test_the_access_log_can_be_turned_off(capsys: pytest.CaptureFixture[str]) -> None:
    with served(build(access_log=False)) as client:
        client.get("/probe/items/3")
    assert access_lines(capsys) == []
