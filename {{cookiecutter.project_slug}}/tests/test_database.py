"""The database: one session per request, its failures as 503s, its settings and migrations."""

{% if cookiecutter.database == "postgresql" -%}
import logging
{% endif -%}
import re
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import QueuePool

from {{ cookiecutter.package_name }}.db import (
    Database,
    DatabaseUnavailable,
    SessionDep,
    database_unavailable,
    database_url,
)
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.observability.tracing import Tracing
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

from .conftest import production_settings, run_async

PROJECT = Path(__file__).resolve().parents[1]
UNREACHABLE = "sqlite+aiosqlite:////nonexistent-folder/service.db"


def notes_app(database: Database) -> FastAPI:
    """A small app over the session dependency: a note is written, then the route may fail."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with database.running() as sessions:
            yield {"sessions": sessions}

    app = FastAPI(
        lifespan=lifespan, exception_handlers={DatabaseUnavailable: database_unavailable}
    )

    @app.post("/notes/{text_}")
    async def add(text_: str, session: SessionDep, fail: bool = False) -> dict[str, int]:
        await session.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": text_})
        if fail:
            raise RuntimeError("the route failed after writing")
        return {"count": await session.scalar(text("SELECT count(*) FROM notes")) or 0}

    return app


async def create_notes_table(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE IF EXISTS notes"))
            await connection.execute(text("CREATE TABLE notes (body VARCHAR(100))"))
    finally:
        await engine.dispose()


def test_a_route_that_succeeds_commits_and_one_that_fails_rolls_back(database_url: str) -> None:
    run_async(create_notes_table(database_url))
    database = Database(Settings(_env_file=None))
    with TestClient(notes_app(database), raise_server_exceptions=False) as client:
        assert client.post("/notes/kept").json() == {"count": 1}
        assert client.post("/notes/lost", params={"fail": True}).status_code == 500
        assert client.post("/notes/kept-too").json() == {"count": 2}
        pool = database.engine.pool
        assert isinstance(pool, QueuePool) and pool.checkedout() == 0  # every one given back


def test_queries_are_spans_inside_a_sampled_trace_only(database_url: str) -> None:
    run_async(create_notes_table(database_url))
    spans = InMemorySpanExporter()
    tracing = Tracing(Settings(_env_file=None, trace_sample_ratio=1.0))
    tracing.extra_processors.append(SimpleSpanProcessor(spans))

    async def query_outside_then_inside_a_sampled_request() -> None:
        async with tracing.running(), Database(tracing.settings).running() as sessions:
            async with sessions.begin() as session:
                await session.execute(text("SELECT count(*) FROM notes"))  # no trace: no span
            assert tracing.tracer is not None
            with tracing.tracer.start_as_current_span("request") as request:
                assert request.is_recording()
                async with sessions.begin() as session:
                    await session.execute(text("SELECT body FROM notes"))
            assert spans.get_finished_spans()  # seen before the exporter shuts down

    run_async(query_outside_then_inside_a_sampled_request())
    [query, request] = spans.get_finished_spans()
    assert request.name == "request"
    assert query.name == "SELECT" and query.kind is SpanKind.CLIENT
    assert query.parent is not None and query.parent.span_id == request.context.span_id
    assert query.attributes is not None
    assert query.attributes["db.query.text"] == "SELECT body FROM notes"
    assert query.attributes["db.system.name"] in {"postgresql", "sqlite"}


def test_queries_and_the_pool_in_use_show_on_metrics(client: TestClient) -> None:
    assert client.get("/health/ready").status_code == 200  # a SELECT 1
    metrics = client.get("/metrics").text
    count = re.search(r"^db_query_duration_seconds_count (\S+)$", metrics, re.MULTILINE)
    assert count is not None and float(count[1]) >= 1
    idle = re.compile(r"^db_pool_connections_in_use 0\.0$", re.MULTILINE)
    for _ in range(100):  # a background task of the app may hold one for a moment
        if idle.search(metrics):
            break
        time.sleep(0.01)
        metrics = client.get("/metrics").text
    assert idle.search(metrics)


def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after() -> None:
    database = Database(Settings(_env_file=None, database_url=UNREACHABLE))
    with TestClient(notes_app(database), raise_server_exceptions=False) as client:
        response = client.post("/notes/any")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["detail"] == "The database is unavailable; try again later."


def test_readiness_is_503_while_the_database_cannot_be_reached() -> None:
    with TestClient(create_app(Settings(_env_file=None, database_url=UNREACHABLE))) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "down"


def test_a_url_without_an_async_driver_is_refused() -> None:
    with pytest.raises(ValueError, match="an async driver"):
        Settings(_env_file=None, database_url="postgresql://db/service")
{%- if cookiecutter.database == "postgresql" %}


@pytest.mark.parametrize("url", ["", "sqlite+aiosqlite:///./service.db"])
def test_outside_development_only_postgresql_is_accepted(url: str) -> None:
    with pytest.raises(ValueError, match="must be a PostgreSQL URL"):
        Settings(_env_file=None, **production_settings(database_url=url))
    assert Settings(_env_file=None, **production_settings()).database_url


def test_development_without_a_url_uses_a_sqlite_file_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("{{ cookiecutter.package_name.upper() }}_DATABASE_URL")
    with caplog.at_level(logging.INFO):
        url = database_url(Settings(_env_file=None))
    assert url.startswith("sqlite+aiosqlite:///")
    assert [r.getMessage() for r in caplog.records if "SQLite" in r.getMessage()] == [
        f"no DATABASE_URL: using the local SQLite file ({url})"
    ]
{%- else %}


def test_a_sqlite_file_is_accepted_in_production() -> None:
    settings = Settings(_env_file=None, **production_settings(database_url=UNREACHABLE))
    assert database_url(settings) == UNREACHABLE
{%- endif %}


def round_trip(config: Config) -> None:
    command.upgrade(config, "head")
    command.check(config)
    command.downgrade(config, "base")
    command.upgrade(config, "head")


def test_the_migrations_build_the_models_schema_and_come_down_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """upgrade, check (the models and the migrations agree), downgrade, upgrade."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    monkeypatch.setenv("{{ cookiecutter.package_name.upper() }}_DATABASE_URL", url)
    monkeypatch.chdir(PROJECT)
    get_settings.cache_clear()
    try:
        # On a thread of its own: env.py's asyncio.run() leaves its thread without a loop.
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(round_trip, Config(str(PROJECT / "alembic.ini"))).result()
    finally:
        get_settings.cache_clear()
