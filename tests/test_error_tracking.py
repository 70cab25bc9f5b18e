"""Error tracking against the real service: a 500 reaches a local Sentry envelope endpoint (the
bake's tests/sentry_sink.py) as one event with the request's ids and no credential; a 404 sends
nothing."""

import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from .combinations import COMBINATIONS, first_with_examples
from .conftest import Baked, bake_module
from .served import otlp_receiver, running

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SECRETS = {
    "authorization": "Bearer secret-bearer-0123456789",
    "cookie": "session=secret-cookie-0123456789",
    "x-api-key": "secret-api-key-0123456789",
}


def load_sink(baked: Baked) -> ModuleType:
    return bake_module(baked, "tests/sentry_sink.py")


def broken_database(baked: Baked, tmp_path: Path) -> str:
    """A copy of the bake's migrated development database with a column the code reads renamed:
    every query on articles fails with a database error that is not an outage (a 500)."""
    copy = tmp_path / "broken.db"
    shutil.copy(baked.path / f"{baked.package}.db", copy)
    with sqlite3.connect(copy) as connection:
        connection.execute("ALTER TABLE articles RENAME COLUMN name TO title")
    return f"sqlite+aiosqlite:///{copy}"


def test_a_real_500_is_one_event_with_the_requests_ids_and_no_secret_a_404_none(
    request: pytest.FixtureRequest, installed: Baked, tmp_path: Path
) -> None:
    params = request.node.callspec.params["baked"]
    if params != COMBINATIONS[first_with_examples()] or installed.context["database"] == "none":
        pytest.skip("checked once, in the first combination with the articles in a database")
    prefix = installed.package.upper()
    with load_sink(installed).serving() as sink, otlp_receiver() as (endpoint, _):
        settings = {
            f"{prefix}_SENTRY_DSN": sink.dsn,
            f"{prefix}_DATABASE_URL": broken_database(installed, tmp_path),
            f"{prefix}_TRACE_SAMPLE_RATIO": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        }
        with contextmanager(running)(installed.path, installed.package, settings) as service:
            traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
            failed = httpx.get(
                f"{service.url}/api/v1/articles?token=secret-query-0123456789",
                headers={**SECRETS, "traceparent": traceparent},
            )
            missing = httpx.get(f"{service.url}/nowhere", headers=SECRETS)
            output = service.stop()  # the lifespan's shutdown sends what is queued
    assert (failed.status_code, missing.status_code) == (500, 404)
    assert "database error" in output
    [event] = sink.events()
    assert event["tags"]["request_id"] == failed.headers["x-request-id"]
    assert event["tags"]["trace_id"] == TRACE_ID
    assert event["release"].endswith(f"@{installed.context['version']}")
    assert event["environment"] == "development"
    raw = sink.raw()
    for secret in [*SECRETS.values(), "secret-query"]:
        assert secret.split("=")[-1].encode() not in raw
