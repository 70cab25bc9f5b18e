"""The database option against a real PostgreSQL: a private cluster started for the session on a
free port. The bake's own tests, the migrations both ways, and the real service (`python -m`)
serving articles from it under concurrency, bad input, a lock held too long, the database
stopped then started again, and a database never migrated (PostgreSQL and SQLite) migrated while
it runs. The slow checks run once per `database` value, in its first
combination (tests/combinations.py), not in every combination."""

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .combinations import COMBINATIONS, first_with_database
from .conftest import Baked
from .postgres import Postgres, database_name, private_cluster
from .served import Service, otlp_receiver, running

serving = contextmanager(running)
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT
URL = "/api/v1/articles"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with private_cluster() as server:
        yield server


@pytest.fixture
def on_postgresql(request: pytest.FixtureRequest, installed: Baked) -> Baked:
    """The installed bake, in the one combination that runs the real-PostgreSQL checks."""
    if installed.context["database"] != "postgresql":
        pytest.skip(f"database={installed.context['database']}")
    if request.node.callspec.params["baked"] != COMBINATIONS[first_with_database("postgresql")]:
        pytest.skip("the real-PostgreSQL checks run in one combination per database value")
    return installed


def test_the_bakes_tests_pass_on_postgresql(on_postgresql: Baked, postgres: Postgres) -> None:
    """Its tests that use the database, on PostgreSQL rather than their SQLite files."""
    env = {**os.environ, "TEST_DATABASE_URL": postgres.new_database()}
    files = ["tests/test_database.py", "tests/test_health.py", "tests/test_server.py"]
    if on_postgresql.context["include_examples"]:
        files += ["tests/test_articles.py", "tests/test_article_versions.py"]
    command = ["uv", "run", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files]
    result = subprocess.run(
        command, cwd=on_postgresql.path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def alembic(baked: Baked, url: str, *args: str) -> str:
    env = {**os.environ, f"{baked.package.upper()}_DATABASE_URL": url}
    command = [str(baked.path / ".venv" / "bin" / "alembic"), *args]
    result = subprocess.run(
        command, cwd=baked.path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_the_migrations_go_up_down_and_up_again_on_postgresql(
    on_postgresql: Baked, postgres: Postgres
) -> None:
    url = postgres.new_database()
    name = database_name(url)
    alembic(on_postgresql, url, "upgrade", "head")
    alembic(on_postgresql, url, "check")  # the models and the migrations agree, on PostgreSQL
    tables = "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables"
    tables += " WHERE schemaname = 'public'"
    expected = "alembic_version,articles" if on_postgresql.context["include_examples"] else ""
    assert postgres.sql(tables, name) == (expected or "alembic_version")
    alembic(on_postgresql, url, "downgrade", "base")
    assert postgres.sql(tables, name) == "alembic_version"
    alembic(on_postgresql, url, "upgrade", "head")
    assert postgres.sql(tables, name) == (expected or "alembic_version")


def test_alembic_check_fails_when_a_model_has_no_migration(
    on_postgresql: Baked, tmp_path: Path
) -> None:
    """A column added to a model without a migration: `make check`'s `alembic check` fails."""
    if not on_postgresql.context["include_examples"]:
        pytest.skip("include_examples is off: no model to change")
    copy = tmp_path / "project"
    for item in ("src", "alembic.ini"):
        source = on_postgresql.path / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / item)
    rows = copy / "src" / on_postgresql.package / "domain" / "article_rows.py"
    text = rows.read_text()
    marker = "    version: Mapped[int]"
    rows.write_text(text.replace(marker, "    sku: Mapped[str | None]\n" + marker))
    url = f"sqlite+aiosqlite:///{tmp_path / 'check.db'}"
    env = {
        **os.environ,
        f"{on_postgresql.package.upper()}_DATABASE_URL": url,
        "PYTHONPATH": str(copy / "src"),  # the changed model, not the bake's installed one
    }
    alembic_bin = str(on_postgresql.path / ".venv" / "bin" / "alembic")
    upgrade = subprocess.run(
        [alembic_bin, "upgrade", "head"], cwd=copy, env=env, capture_output=True, text=True
    )
    assert upgrade.returncode == 0, upgrade.stderr
    check = subprocess.run([alembic_bin, "check"], cwd=copy, env=env, capture_output=True, text=True)
    assert check.returncode != 0
    assert "New upgrade operations detected" in check.stderr + check.stdout
    assert "sku" in check.stderr + check.stdout


@pytest.fixture(scope="session")
def migrated(postgres: Postgres) -> Iterator[list[str]]:
    """The name of a database migrated once, which each served test copies (faster than
    migrating again); filled by the first test that needs it."""
    yield []


@dataclass
class Served:
    service: Service
    url: str  # the database's
    name: str


def migrated_copy(baked: Baked, postgres: Postgres, migrated: list[str]) -> str:
    """The URL of a new database copied from the one migrated once (migrated first if needed)."""
    if not migrated:
        template = postgres.new_database()
        alembic(baked, template, "upgrade", "head")
        migrated.append(database_name(template))
    return postgres.new_database(template=migrated[0])


@contextmanager
def articles_served(
    baked: Baked, postgres: Postgres, migrated: list[str], extra: dict[str, str] | None = None
) -> Iterator[Served]:
    """The real service (`python -m`) on a migrated database of its own."""
    if not baked.context["include_examples"]:
        pytest.skip("include_examples is off: no articles to serve")
    url = migrated_copy(baked, postgres, migrated)
    prefix = baked.package.upper()
    settings = {
        f"{prefix}_DATABASE_URL": url,
        f"{prefix}_RATE_LIMIT_DEFAULT": "100000/minute",
        f"{prefix}_RATE_LIMIT_WRITE": "100000/minute",
        f"{prefix}_READINESS_CACHE_SECONDS": "0",
        f"{prefix}_DATABASE_STATEMENT_TIMEOUT_SECONDS": "1",
        f"{prefix}_DATABASE_POOL_TIMEOUT_SECONDS": "2",
        f"{prefix}_LOG_LEVEL": "WARNING",
        f"{prefix}_ACCESS_LOG": "false",
        **(extra or {}),
    }
    with serving(baked.path, baked.package, settings) as service:
        yield Served(service, url, database_name(url))
    # Stopped: it gave every connection back.
    connections = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database_name(url)}'"
    assert postgres.sql(connections) == "0"


@pytest.fixture
def served(on_postgresql: Baked, postgres: Postgres, migrated: list[str]) -> Iterator[Served]:
    with articles_served(on_postgresql, postgres, migrated) as served:
        yield served


async def create_and_read(base: str, total: int) -> tuple[list[int], list[int]]:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def create(number: int) -> int:
            body = {"name": f"Concurrent {number}", "price": number + 0.5}
            return (await client.post(URL, json=body)).status_code

        async def read() -> int:
            return (await client.get(URL, params={"limit": 100})).status_code

        created = asyncio.gather(*(create(n) for n in range(total)))
        read_all = asyncio.gather(*(read() for _ in range(total)))
        return list(await created), list(await read_all)


def test_100_concurrent_creates_and_reads_each_get_their_own_session(
    served: Served, postgres: Postgres
) -> None:
    created, read = asyncio.run(create_and_read(served.service.url, 100))
    assert created == [201] * 100
    assert read == [200] * 100
    assert postgres.sql("SELECT count(*) FROM articles", served.name) == "100"
    listed = httpx.get(f"{served.service.url}{URL}", params={"limit": 100}).json()
    assert sorted(a["name"] for a in listed) == sorted(f"Concurrent {n}" for n in range(100))
    output = "".join(served.service.output)
    assert "another operation is in progress" not in output
    assert "unhandled" not in output and "database error" not in output


async def same_name(base: str, total: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        body = {"name": "Only once", "price": 1}
        responses = await asyncio.gather(*(client.post(URL, json=body) for _ in range(total)))
        return [response.status_code for response in responses]


def test_racing_creates_with_one_name_make_one_article_and_409s(
    served: Served, postgres: Postgres
) -> None:
    statuses = sorted(asyncio.run(same_name(served.service.url, 20)))
    assert statuses == [201] + [409] * 19
    assert postgres.sql("SELECT count(*) FROM articles", served.name) == "1"


def test_bad_input_is_a_422_or_stored_as_given_never_a_500(served: Served) -> None:
    base = f"{served.service.url}{URL}"
    json_type = {"content-type": "application/json"}
    refused = [
        httpx.post(base, json={"name": "x" * 201, "price": 1}),
        httpx.post(base, json={"name": "nul\u0000byte", "price": 1}),
        httpx.post(base, content=b'{"name": "nan", "price": NaN}', headers=json_type),
        httpx.post(base, content=b'{"name": "inf", "price": Infinity}', headers=json_type),
        httpx.post(base, content=b'{"name": "big", "price": 1e400}', headers=json_type),
        httpx.post(base, content=b'{"name": "lone \\ud800", "price": 1}', headers=json_type),
        httpx.get(f"{base}/{2**63}"),
        httpx.get(f"{base}/-1"),
        httpx.put(f"{base}/{2**64}", json={"name": "a", "price": 1}),
        httpx.get(base, params={"skip": 10**20}),
    ]
    assert [r.status_code for r in refused] == [422] * len(refused)
    assert httpx.get(f"{base}/{2**63 - 1}").status_code == 404
    for name in ["Robert'); DROP TABLE articles;--", "100% _off_ \\ \"q\" ; --", "ß" * 200]:
        created = httpx.post(base, json={"name": name, "price": 1})
        assert created.status_code == 201, created.text
        stored = httpx.get(served.service.url + created.headers["location"])
        assert stored.json()["name"] == name
    assert httpx.post(base, json={"name": "Straße", "price": 1}).status_code == 201
    assert httpx.post(base, json={"name": "STRASSE", "price": 1}).status_code == 409  # casefold
    assert len(httpx.get(base).json()) == 4


def test_a_lock_held_past_the_statement_timeout_is_a_503(
    served: Served, postgres: Postgres
) -> None:
    base = f"{served.service.url}{URL}"
    assert httpx.post(base, json={"name": "Locked", "price": 1}).status_code == 201
    psql = [str(postgres.bin / "psql"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U",
            "postgres", "-d", served.name, "-XAtq"]  # fmt: skip
    lock = "BEGIN; LOCK TABLE articles IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT;"
    holder = subprocess.Popen([*psql, "-c", lock], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        started = time.monotonic()
        slow = httpx.get(base, timeout=10)
        assert slow.status_code == 503
        assert slow.headers["retry-after"] == "2"
        assert time.monotonic() - started < 3  # the statement timeout (1 s), not the lock's 4 s
    finally:
        holder.wait(timeout=30)
    assert httpx.get(base).status_code == 200


def test_the_database_stopped_is_a_503_then_the_service_recovers_by_itself(
    served: Served, postgres: Postgres
) -> None:
    base = f"{served.service.url}{URL}"
    created = httpx.post(base, json={"name": "Survivor", "price": 1})
    assert created.status_code == 201
    path = f"{served.service.url}{created.headers['location']}"
    postgres.pg_ctl("stop")
    try:
        down = httpx.get(path, timeout=10)
        assert down.status_code == 503
        assert down.headers["retry-after"] == "2"
        assert down.headers["content-type"] == "application/problem+json"
        ready = httpx.get(f"{served.service.url}/health/ready", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["status"] == "down"
        assert httpx.post(base, json={"name": "Lost", "price": 1}).status_code == 503
    finally:
        postgres.pg_ctl("start")
    deadline = time.monotonic() + 15
    while httpx.get(path).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(path).json()["name"] == "Survivor"
    assert httpx.get(f"{served.service.url}/health/ready").status_code == 200
    output = "".join(served.service.output)
    assert "unhandled" not in output and "database error" not in output  # no 500 on the way


def test_queries_are_spans_inside_sampled_requests_only(
    on_postgresql: Baked, postgres: Postgres, migrated: list[str]
) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with otlp_receiver() as (endpoint, spans):
        extra = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            f"{on_postgresql.package.upper()}_TRACE_SAMPLE_RATIO": "0",  # new traces: never
        }
        with articles_served(on_postgresql, postgres, migrated, extra) as served:
            base = served.service.url
            created = httpx.post(f"{base}{URL}", json={"name": "Traced", "price": 1})
            assert created.status_code == 201  # unsampled: its queries make no span
            sampled = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
            assert httpx.get(base + created.headers["location"], headers=sampled).is_success
            served.service.stop()  # flushes the exporter
    [request] = [span for span in spans if span.kind == SPAN_KIND_SERVER]
    assert request.name == "GET /api/v1/articles/{article_id}"
    queries = [span for span in spans if span.kind == SPAN_KIND_CLIENT]
    assert queries, spans
    for query in queries:
        assert query.trace_id.hex() == trace_id
        assert query.parent_span_id == request.span_id
        attributes = {a.key: a.value.string_value for a in query.attributes}
        assert "postgresql" in {attributes.get("db.system"), attributes.get("db.system.name")}
    assert len(spans) == 1 + len(queries)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_database_never_migrated_is_a_503_naming_the_migration_until_migrated_while_serving(
    request: pytest.FixtureRequest, on_postgresql: Baked, tmp_path: Path, database: str
) -> None:
    """Readiness and the articles say which migration is missing and what runs it; `alembic
    upgrade head` while the service runs, and it serves, without a restart."""
    if not on_postgresql.context["include_examples"]:
        pytest.skip("include_examples is off: no articles to serve")
    if database == "postgresql":
        url = request.getfixturevalue("postgres").new_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'}"
    prefix = on_postgresql.package.upper()
    settings = {f"{prefix}_DATABASE_URL": url, f"{prefix}_READINESS_CACHE_SECONDS": "0"}
    with serving(on_postgresql.path, on_postgresql.package, settings) as service:
        ready = httpx.get(f"{service.url}/health/ready", timeout=10)
        assert ready.status_code == 503
        missing = ready.json()["checks"]["database"]["error"]
        assert missing.startswith("The database has no migrations applied; this release needs")
        assert "0001 (create articles)" in missing and "`make migrate`" in missing
        base = f"{service.url}{URL}"
        for refused in [httpx.get(base), httpx.post(base, json={"name": "Early", "price": 1})]:
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "2"
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["detail"] == missing
        alembic(on_postgresql, url, "upgrade", "head")
        assert httpx.get(f"{service.url}/health/ready", timeout=10).status_code == 200
        assert httpx.post(base, json={"name": "Migrated", "price": 1}).status_code == 201
        assert [article["name"] for article in httpx.get(base).json()] == ["Migrated"]
        service.stop()
    output = "".join(service.output)
    assert "unhandled" not in output and "database error" not in output
    assert "database unavailable" not in output
