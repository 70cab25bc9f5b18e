"""The database: one session per request, its failures named (503s only when it is down or not
migrated yet), its settings, its column types and its migrations."""

import logging
import re
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
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
from sqlalchemy import Column, MetaData, Table, event, exc, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import QueuePool

from {{ cookiecutter.package_name }}.db import (
    Database,
    DatabaseUnavailable,
    SessionDep,
    UtcDateTime,
    database_url,
    unavailable,
)
from {{ cookiecutter.package_name }}.db_errors import DATABASE_ERRORS
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.observability.tracing import Tracing
from {{ cookiecutter.package_name }}.schema import migrations
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

from .conftest import LogLines, empty_tables, production_settings, run_async

PROJECT = Path(__file__).resolve().parents[1]
UNREACHABLE = "sqlite+aiosqlite:////nonexistent-folder/service.db"


def notes_app(database: Database) -> FastAPI:
    """A small app over the session dependency: a note is written, then the route may fail."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with database.running() as sessions:
            yield {"sessions": sessions}

    app = FastAPI(lifespan=lifespan, exception_handlers=DATABASE_ERRORS)

    @app.post("/notes/{text_}")
    async def add(
        text_: str, session: SessionDep, fail: bool = False, call_out: bool = False
    ) -> dict[str, int]:
        await session.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": text_})
        if fail:
            raise RuntimeError("the route failed after writing")
        if call_out:  # another service, not the database, refuses a connection
            raise ConnectionRefusedError("an upstream service refused the connection")
        return {"count": await session.scalar(text("SELECT count(*) FROM notes")) or 0}

    @app.get("/broken/{fault}")
    async def broken(fault: str, session: SessionDep) -> None:
        if fault == "no-table":  # a bug, or a table dropped by hand: not a missing migration
            await session.execute(text("SELECT * FROM no_such_table"))
        await session.execute(text("INSERT INTO notes (body) VALUES (NULL)"))  # NOT NULL

    return app


async def create_notes_table(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE IF EXISTS notes"))
            await connection.execute(text("CREATE TABLE notes (body VARCHAR(100) NOT NULL)"))
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
        database = Database(tracing.settings)
        async with tracing.running(), database.running(tracing.provider) as sessions:
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


def test_a_sampled_requests_queries_are_spans_of_its_apps_provider(settings: Settings) -> None:
    """Not of the process's global provider, which the first app to start keeps: a second app
    in the same process (as in these tests) still sees its own queries."""
    for _ in range(2):
        spans = InMemorySpanExporter()
        app = create_app(settings.model_copy(update={"trace_sample_ratio": 1.0}))
        app.state.tracing.extra_processors.append(SimpleSpanProcessor(spans))

        @app.get("/probe/query")
        async def query(session: SessionDep) -> None:
            await session.execute(text("SELECT 1"))

        with TestClient(app) as client:
            assert client.get("/probe/query").status_code == 200
        kinds = [(span.name, span.kind) for span in spans.get_finished_spans()]
        assert ("SELECT", SpanKind.CLIENT) in kinds


def test_queries_and_the_pool_in_use_show_on_metrics(client: TestClient) -> None:
    assert client.get("/health/ready").status_code == 200  # a query or two
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


def alembic(url: str, monkeypatch: pytest.MonkeyPatch, steps: Any = round_trip) -> None:
    """Alembic's commands on `url`, as `make migrate` runs them."""
    monkeypatch.setenv("{{ cookiecutter.package_name.upper() }}_DATABASE_URL", url)
    monkeypatch.chdir(PROJECT)
    get_settings.cache_clear()
    try:
        # On a thread of its own: env.py's asyncio.run() leaves its thread without a loop.
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(steps, Config(str(PROJECT / "alembic.ini"))).result()
    finally:
        get_settings.cache_clear()


def upgrade(config: Config) -> None:
    command.upgrade(config, "head")


def test_the_migrations_build_the_models_schema_and_come_down_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """upgrade, check (the models and the migrations agree), downgrade, upgrade."""
    alembic(f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}", monkeypatch)


def test_a_database_never_migrated_is_not_ready_until_migrated_then_ready_unrestarted(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_async(empty_tables(database_url, migrated=False))
    heads = migrations().get_heads()
    with TestClient(create_app(Settings(_env_file=None, readiness_cache_seconds=0))) as client:
        before = client.get("/health/ready")
        alembic(database_url, monkeypatch, upgrade)
        after = client.get("/health/ready")
    assert after.status_code == 200
    if not heads:  # no migration yet: nothing to wait for
        assert before.status_code == 200
        return
    assert before.status_code == 503
    error = before.json()["checks"]["database"]["error"]
    assert error.startswith("The database has no migrations applied; this release needs")
    assert heads[0] in error and "`make migrate`" in error and "alembic upgrade head" in error


def test_a_database_migrated_by_a_newer_release_is_ready(
    database_url: str, app: FastAPI, log_lines: LogLines
) -> None:
    """Expand/contract: the old replicas keep serving once the next release has migrated."""
    run_async(stamp(database_url, "a-revision-of-a-newer-release"))
    with TestClient(app) as client:
        assert client.get("/health/ready").status_code == 200
    assert [line for line in log_lines() if line["logger"].startswith("alembic")] == []


async def stamp(url: str, revision: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in [
                "DROP TABLE IF EXISTS alembic_version",
                "CREATE TABLE alembic_version (version_num VARCHAR(32))",
                f"INSERT INTO alembic_version VALUES ('{revision}')",
            ]:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def test_a_database_migrations_behind_names_its_revision_and_the_one_needed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    newest_first = [script.revision for script in migrations().walk_revisions()]
    if len(newest_first) < 2:
        pytest.skip("a single migration: a database is at it or has none")
    run_async(empty_tables(database_url, migrated=False))
    alembic(database_url, monkeypatch, lambda config: command.upgrade(config, newest_first[-1]))
    with TestClient(create_app(Settings(_env_file=None))) as client:
        error = client.get("/health/ready").json()["checks"]["database"]["error"]
    assert error.startswith(f"The database is at revision {newest_first[-1]} (")
    assert f"this release needs revision {newest_first[0]} (" in error


def test_only_the_databases_failures_are_503s_not_another_services(database_url: str) -> None:
    run_async(create_notes_table(database_url))
    app = notes_app(Database(Settings(_env_file=None)))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/notes/any", params={"call_out": True})
    assert response.status_code == 500
    assert "unavailable" not in response.text


@pytest.mark.parametrize(
    ("fault", "codes"),
    [
        ("no-table", {"42P01 UndefinedTableError", "SQLITE_ERROR OperationalError: no such"}),
        ("not-null", {"23502 NotNullViolationError", "SQLITE_CONSTRAINT_NOTNULL Integrity"}),
    ],
)
def test_another_database_error_is_a_500_logged_with_the_drivers_error_and_code(
    database_url: str, caplog: pytest.LogCaptureFixture, fault: str, codes: set[str]
) -> None:
    run_async(create_notes_table(database_url))
    app = notes_app(Database(Settings(_env_file=None)))
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        response = client.get(f"/broken/{fault}")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The server could not handle the request."
    [logged] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert logged.startswith(f"database error on /broken/{fault}: ")
    assert any(code in logged for code in codes), logged


def test_a_timeout_in_the_drivers_own_call_is_the_database_unavailable(
    database_url: str,
) -> None:
    """The same TimeoutError, raised where the driver runs a statement: the database's."""
    run_async(create_notes_table(database_url))
    database = Database(Settings(_env_file=None))

    def times_out(*_: Any) -> None:
        raise TimeoutError("the server stopped answering")

    with TestClient(notes_app(database), raise_server_exceptions=False) as client:
        event.listen(database.engine.sync_engine, "before_cursor_execute", times_out)
        response = client.post("/notes/any")
        event.remove(database.engine.sync_engine, "before_cursor_execute", times_out)
        assert client.post("/notes/again").json() == {"count": 1}  # a new connection
    assert response.status_code == 503
    assert response.json()["detail"] == "The database is unavailable; try again later."


def test_unavailable_names_the_database_down_only() -> None:
    assert unavailable(DatabaseUnavailable("cannot connect: ConnectionRefusedError"))
    assert unavailable(exc.TimeoutError("QueuePool limit reached"))  # the pool's timeout
    assert not unavailable(ConnectionRefusedError("another service"))
    assert not unavailable(TimeoutError("another service"))


async def stamps_round_trip(url: str, stamp: datetime) -> datetime | None:
    stamps = Table("stamps", MetaData(), Column("at", UtcDateTime))
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(stamps.drop, checkfirst=True)
            await connection.run_sync(stamps.create)
            await connection.execute(insert(stamps).values(at=stamp))
            found: datetime | None = await connection.scalar(select(stamps.c.at))
            await connection.run_sync(stamps.drop)
            return found
    finally:
        await engine.dispose()


def test_datetimes_come_back_with_their_time_zone_in_utc(database_url: str) -> None:
    """On SQLite (which stores no zone) as on PostgreSQL."""
    stamp = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    found = run_async(stamps_round_trip(database_url, stamp))
    assert found == stamp and found.tzinfo is not None and found.utcoffset() == timedelta(0)
    assert found == stamp.astimezone(UTC)
    with pytest.raises(exc.StatementError, match="a datetime without a time zone"):
        run_async(stamps_round_trip(database_url, datetime(2026, 3, 29, 1, 30)))
