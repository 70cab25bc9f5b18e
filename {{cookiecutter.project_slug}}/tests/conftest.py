{%- if cookiecutter.database != "none" -%}
"""Fixtures: settings isolated from .env, the app with its lifespan running, a real server.

Each test has a database of its own, its tables made from the models and marked as migrated: a
SQLite file, or, when TEST_DATABASE_URL is set{% if cookiecutter.database == "postgresql" %}
(postgresql+asyncpg://...){% endif %}, that database emptied before the test.
"""
{%- else -%}
"""Fixtures: settings isolated from .env, the app with its lifespan running, a real server."""
{%- endif %}

import asyncio
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
{%- if cookiecutter.database != "none" %}
from pathlib import Path
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" %}
from typing import Any, TypeVar, cast
{%- else %}
from typing import Any, TypeVar
{%- endif %}

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
{%- if cookiecutter.database != "none" %}
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
{%- endif %}

from {{ cookiecutter.package_name }}.main import create_app
{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.package_name }}.models import discover_models
from {{ cookiecutter.package_name }}.schema import migrations
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" %}
from {{ cookiecutter.package_name }}.messaging.broker import Broker
from {{ cookiecutter.package_name }}.messaging.publisher import Publisher, get_events
{%- endif %}
from {{ cookiecutter.package_name }}.observability.logging import JsonFormatter
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings
{%- if cookiecutter.auth != "none" %}

from .credentials import AUTH_SETTINGS, PRODUCTION_SETTINGS, SERVER_ENV, auth_headers
{%- endif %}

{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" %}
from .fake_broker import FakeBroker
{%- endif %}
from .upstream import FakeUpstream, serving

LogLines = Callable[[], list[dict[str, Any]]]
{%- if cookiecutter.auth == "none" %}
PRODUCTION_SETTINGS: dict[str, Any] = {}
{%- endif %}
METRICS_TOKEN = "metrics-token-of-the-tests-0123456789"
{%- if cookiecutter.database == "postgresql" %}
# Production requires PostgreSQL; nothing listens on port 1, so nothing is changed there.
PRODUCTION_DATABASE_URL = "postgresql+asyncpg://service:secret@127.0.0.1:1/service"
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}
# Production refuses RabbitMQ's guest; nothing listens on port 1.
PRODUCTION_BROKER_URL = "amqp://service:secret@127.0.0.1:1/"
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" %}
# A RabbitMQ for the real server's writes (amqp://guest:guest@127.0.0.1:5672/ in CI).
TEST_BROKER_URL = os.environ.get("TEST_BROKER_URL", "")
NO_BROKER_URL = "amqp://guest:guest@127.0.0.1:1/"
{%- endif %}
{%- if cookiecutter.database != "none" %}
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
{%- endif %}
T = TypeVar("T")


def production_settings(**overrides: Any) -> dict[str, Any]:
    """Values for Settings in production: what it requires on top of the defaults, and yours."""
{%- if cookiecutter.database == "postgresql" %}
    required = {
        **PRODUCTION_SETTINGS,
        "metrics_token": METRICS_TOKEN,
        "database_url": PRODUCTION_DATABASE_URL,
    }
{%- else %}
    required = {**PRODUCTION_SETTINGS, "metrics_token": METRICS_TOKEN}
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}
    required["broker_url"] = PRODUCTION_BROKER_URL
{%- endif %}
    return {**required, "environment": "production", **overrides}


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from a synchronous test, on a thread of its own: asyncio.run() in the
    main thread would leave it without an event loop for code that asks for the current one."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, work).result()
{%- if cookiecutter.database != "none" %}


def stamp_head(connection: Connection) -> None:
    """Marks the database as migrated to this release's head, as `alembic stamp head` would."""
    if migrations().get_heads():
        MigrationContext.configure(connection).stamp(migrations(), "heads")


async def empty_tables(url: str, migrated: bool = True) -> None:
    """The models' tables, made anew and empty, and marked as migrated (migrations are tested
    on their own); or, not `migrated`, no table at all: a database never migrated."""
    engine = create_async_engine(url)
    models = discover_models()  # the tables Alembic compares: every model's module imported
    try:
        async with engine.begin() as connection:
            await connection.run_sync(models.drop_all)
            await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
            if migrated:
                await connection.run_sync(models.create_all)
                await connection.run_sync(stamp_head)
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This test's database, also in the environment: every Settings() of the test uses it."""
    url = TEST_DATABASE_URL or f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    run_async(empty_tables(url))
    monkeypatch.setenv(f"{ENV_PREFIX}DATABASE_URL", url)
    return url
{%- endif %}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings() -> Settings:
    # Counters in memory: the tests need no Redis (the template tests run a real one).
{%- if cookiecutter.auth == "none" %}
    return Settings(_env_file=None, rate_limit_storage_uri="memory://")
{%- else %}
    return Settings(_env_file=None, rate_limit_storage_uri="memory://", **AUTH_SETTINGS)
{%- endif %}


{% if cookiecutter.messaging == "rabbitmq" and cookiecutter.database == "none" -%}
@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The app, its events published to a fake broker (the template's tests use RabbitMQ)."""
    app = create_app(settings)
    publisher = Publisher(settings, cast(Broker, FakeBroker()))
    app.dependency_overrides[get_events] = lambda: publisher
    return app
{%- else -%}
@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)
{%- endif %}


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
{%- if cookiecutter.auth != "none" %}
        client.headers.update(auth_headers(app.state.settings))  # signed in, allowed everything
{%- endif %}
        yield client


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    """A fake upstream serving real HTTP on a free 127.0.0.1 port (tests/upstream.py)."""
    with serving() as upstream:
        yield upstream


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Each test's app has its own provider (app.state.tracing): the exporter is added to it."""
    return InMemorySpanExporter()


@pytest.fixture
def log_lines(app: FastAPI) -> Iterator[LogLines]:
    """The JSON log lines written while the test runs, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """`python -m {{ cookiecutter.package_name }}` serving real HTTP on 127.0.0.1."""

    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # sent to protected routes

    def read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def listening(self) -> bool:
        """Whether this server (not another process that took the port) says it listens."""
        return any(f"running on {self.url}" in line for line in list(self.lines))

    def wait_until_live(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited:\n" + "".join(self.lines))
            try:
                live = httpx2.get(f"{self.url}/health/live").status_code == 200
            except httpx2.TransportError:
                live = False
            if live and self.listening():
                return
            time.sleep(0.1)
        raise RuntimeError("server did not answer /health/live:\n" + "".join(self.lines))

    def entries(self, until: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The JSON log entries so far, once one matches `until` (the output lags a little)."""
        deadline = time.monotonic() + 10
        while True:
            entries = [json.loads(line) for line in list(self.lines)]
            if any(until(entry) for entry in entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=20)


def start_server(settings: dict[str, str] | None = None, tries: int = 3) -> Server:
    """The server on a free port; another port if that one was taken meanwhile. `settings` are
    extra environment variables."""
    for _ in range(tries - 1):
        try:
            return start_server_once(settings or {})
        except RuntimeError as error:
            if "address already in use" not in str(error).lower():
                raise
    return start_server_once(settings or {})


def start_server_once(settings: dict[str, str]) -> Server:
    port = free_port()
    env = {**os.environ, f"{ENV_PREFIX}HOST": "127.0.0.1", f"{ENV_PREFIX}PORT": str(port)}
    env[f"{ENV_PREFIX}LOG_FORMAT"] = "json"  # the tests read its lines as data
    env.update(settings)
{%- if cookiecutter.auth != "none" %}
    env.update(SERVER_ENV)
{%- endif %}
    process = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(process, f"http://127.0.0.1:{port}")
{%- if cookiecutter.auth != "none" %}
    server.headers.update(auth_headers(Settings(**AUTH_SETTINGS)))  # read like the server's
{%- endif %}
    threading.Thread(target=server.read_output, daemon=True).start()
    try:
        server.wait_until_live()
    except RuntimeError:
        server.stop()
        raise
    return server
{%- if cookiecutter.database != "none" %}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server")
    url = TEST_DATABASE_URL or f"sqlite+aiosqlite:///{folder / 'server.db'}"
    run_async(empty_tables(url))
    server = start_server({f"{ENV_PREFIX}DATABASE_URL": url})
{%- else %}


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
{%- if cookiecutter.messaging == "rabbitmq" %}
    # Nothing listens on port 1: without TEST_BROKER_URL the broker is down.
    server = start_server({f"{ENV_PREFIX}BROKER_URL": TEST_BROKER_URL or NO_BROKER_URL})
{%- else %}
    server = start_server()
{%- endif %}
{%- endif %}
    yield server
    if server.process.poll() is None:
        server.stop()
