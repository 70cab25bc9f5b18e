"""Error tracking: what reaches Sentry (a local envelope sink, tests/sentry_sink.py) and what
never does."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.observability.error_tracking import (
    reported,
    start,
    stop,
)
from {{ cookiecutter.package_name }}.resilience.errors import UpstreamUnavailable
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings, describe

from .sentry_sink import SentrySink, serving

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SECRETS = {
    "authorization": "Bearer secret-bearer-0123456789",
    "cookie": "session=secret-cookie-0123456789",
    "x-api-key": "secret-api-key-0123456789",
}
probe = APIRouter(prefix="/probe")


@probe.post("/fail")
async def fail(payload: dict[str, Any]) -> None:
    raise RuntimeError("boom")


@probe.get("/answer/{status}")
async def answer(status: int) -> None:
    raise HTTPException(status, headers={"Retry-After": "1"})  # as the rate limiter, the pools


@probe.get("/upstream-down")
async def upstream_down() -> None:
    raise UpstreamUnavailable("probe", "refused the connection")


@pytest.fixture
def sink() -> Iterator[SentrySink]:
    with serving() as sink:
        yield sink


def tracked(sink: SentrySink, spans: InMemorySpanExporter | None = None) -> FastAPI:
    settings = Settings(
        _env_file=None,
        sentry_dsn=sink.dsn,
        rate_limit_storage_uri="memory://",
        rate_limit_default="1000/minute",
        trace_sample_ratio=1.0,
    )
    app = create_app(settings)
    if spans is not None:
        app.state.tracing.extra_processors.append(SimpleSpanProcessor(spans))
    app.include_router(probe)
    return app


def test_a_500_is_one_event_with_the_release_environment_request_id_and_trace_id(
    sink: SentrySink,
) -> None:
    headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01", "x-request-id": "req-500"}
    with TestClient(tracked(sink, InMemorySpanExporter()), raise_server_exceptions=False) as c:
        assert c.post("/probe/fail", json={}, headers=headers).status_code == 500
    [event] = sink.events()  # sent by the lifespan's shutdown
    assert event["release"] == f"{Settings(_env_file=None).service_name}@{__version__}"
    assert event["environment"] == "development"
    assert event["tags"]["request_id"] == "req-500"
    assert event["tags"]["trace_id"] == TRACE_ID
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"


def test_4xx_429_and_the_503s_of_a_dependency_down_are_not_reported(sink: SentrySink) -> None:
    with TestClient(tracked(sink), raise_server_exceptions=False) as client:
        assert client.get("/nowhere").status_code == 404
        assert client.post("/probe/fail", json=[]).status_code == 422
        assert client.get("/probe/answer/429").status_code == 429
        assert client.get("/probe/answer/503").status_code == 503
        assert client.get("/probe/upstream-down").status_code == 503
        assert client.post("/probe/fail", json={}).status_code == 500  # the sink is listening
    assert [e["exception"]["values"][-1]["type"] for e in sink.events()] == ["RuntimeError"]


def test_no_credential_query_string_or_body_reaches_sentry(sink: SentrySink) -> None:
    with TestClient(tracked(sink), raise_server_exceptions=False) as client:
        response = client.post(
            "/probe/fail?token=secret-query-0123456789",
            json={"note": "secret-body-0123456789"},
            headers=SECRETS,
        )
    assert response.status_code == 500
    assert len(sink.events()) == 1
    raw = sink.raw()
    for secret in [*SECRETS.values(), "secret-query", "secret-body"]:
        assert secret.split("=")[-1].encode() not in raw


def test_without_a_dsn_nothing_is_set_up() -> None:
    with TestClient(create_app(Settings(_env_file=None, rate_limit_storage_uri="memory://"))):
        assert not sentry_sdk.get_client().is_active()


@pytest.mark.parametrize(
    "dsn",
    [
        "not a dsn",
        "ftp://key@example.com/1",
        "https://example.com/1",  # no public key
        "https://key@example.com/x",  # no project id
        "https://key@example.com:port/1",
    ],
)
def test_a_malformed_dsn_is_refused_in_one_line_without_echoing_it(dsn: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, sentry_dsn=dsn)
    line = describe(refused.value)
    assert line.startswith(f"{ENV_PREFIX}SENTRY_DSN: must be a Sentry DSN")
    assert dsn not in line


class Failing:
    id, type = "message-1", "thing.happened"


def test_a_failed_handling_is_reported_with_its_message_id_then_raised_again(
    sink: SentrySink,
) -> None:
    async def handler(event: Failing) -> None:
        raise RuntimeError("the handler failed")

    start(Settings(_env_file=None, sentry_dsn=sink.dsn))
    try:
        with pytest.raises(RuntimeError):  # for the consumer to retry or dead-letter
            asyncio.run(reported(handler)(Failing()))
    finally:
        stop()
    [event] = sink.events()
    assert event["tags"]["message_id"] == "message-1"
    assert event["tags"]["event"] == "thing.happened"
