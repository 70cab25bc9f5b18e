"""The database: one engine per process, one session per request, and its failures as 503s.

main.py opens the `Database` in the app's lifespan; routes take a session through `SessionDep`,
which commits when the route succeeds and rolls back when it raises. Repositories work on that
session; they never commit themselves. The schema is Alembic's (migrations/): the service never
creates or alters tables at start-up.
"""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from prometheus_client import Gauge, Histogram
from sqlalchemy import MetaData, event, exc, text
from sqlalchemy.engine import Connection, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase

from .errors import Problem, ProblemResponse, problem
from .settings import DEVELOPMENT_DATABASE_URL, Settings

logger = logging.getLogger(__name__)
# Constraint names that do not depend on the database's own scheme, so that migrations written
# on SQLite drop the same constraint on PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# A client told to come back in this many seconds rather than hammer a database that is down.
RETRY_AFTER_SECONDS = 2
# PostgreSQL's SQLSTATEs of an unavailable database rather than a bad query: a statement
# cancelled by statement_timeout, a server shutting down or starting, too many connections.
UNAVAILABLE_STATES = {"57014", "57P01", "57P02", "57P03", "53300"}


# On /metrics beside the HTTP metrics: a pool always full, or queries slowing, show here first.
POOL_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections checked out of the pool (summed over workers).",
    multiprocess_mode="livesum",
)
QUERY_SECONDS = Histogram(
    "db_query_duration_seconds",
    "Database statement duration in seconds.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class Base(DeclarativeBase):
    """The models' base: every table joins its metadata, which Alembic compares."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DatabaseUnavailable(Exception):
    """The database did not answer in time, or could not be reached: a 503, never a 500."""


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or without one (development only: settings.py refuses it elsewhere) a
    SQLite file in the working directory."""
    url = settings.database_url.get_secret_value()
    if url:
        return url
    logger.info("no DATABASE_URL: using the local SQLite file (%s)", DEVELOPMENT_DATABASE_URL)
    return DEVELOPMENT_DATABASE_URL


def create_engine(settings: Settings, url: str) -> AsyncEngine:
    timeout = settings.database_statement_timeout_seconds
    if make_url(url).get_backend_name() == "postgresql":
        connect_args: dict[str, Any] = {
            "timeout": settings.database_pool_timeout_seconds,  # to open a connection
            "server_settings": {"statement_timeout": str(int(timeout * 1000))},
            # The client's own limit, for a server that stopped answering altogether.
            "command_timeout": timeout + 1,
        }
    else:
        connect_args = {"timeout": timeout}  # SQLite: how long to wait for a locked file
    engine = create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_pre_ping=True,  # a connection the server dropped is replaced, not used
        connect_args=connect_args,
    )
    measure(engine)
    return engine


def measure(engine: AsyncEngine) -> None:
    """The pool's connections in use, each statement's duration and, inside a sampled request,
    its span: through SQLAlchemy's documented events (the async engine fires them on its
    sync_engine, in the request's context)."""
    event.listen(engine.sync_engine.pool, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(engine.sync_engine.pool, "checkin", lambda *_: POOL_IN_USE.dec())

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def started(connection: Connection, cursor: Any, statement: str, *_: Any) -> None:
        # One statement at a time per connection: its info holds the statement's own state.
        connection.info["query_started"] = time.perf_counter()
        if trace.get_current_span().is_recording():
            connection.info["query_span"] = query_span(connection, statement)

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def finished(connection: Connection, *_: Any) -> None:
        QUERY_SECONDS.observe(time.perf_counter() - connection.info["query_started"])
        if span := connection.info.pop("query_span", None):
            span.end()

    @event.listens_for(engine.sync_engine, "handle_error")
    def failed(error: ExceptionContext) -> None:
        if error.connection and (span := error.connection.info.pop("query_span", None)):
            span.set_status(StatusCode.ERROR, type(error.original_exception).__name__)
            span.end()


def query_span(connection: Connection, statement: str) -> Span:
    """A client span named and described by OpenTelemetry's database conventions; the text
    has placeholders, never the values. (OpenTelemetry's SQLAlchemy instrumentation refuses
    SQLAlchemy 2.1, and would do span work in unsampled requests too.)"""
    url = connection.engine.url
    operation = statement.split(maxsplit=1)[0].upper() if statement.strip() else "QUERY"
    attributes: dict[str, str | int] = {
        "db.system.name": url.get_backend_name(),
        "db.operation.name": operation,
        "db.query.text": statement,
    }
    if url.database:
        attributes["db.namespace"] = url.database
    if url.host:
        attributes["server.address"] = url.host
    if url.port:
        attributes["server.port"] = url.port
    tracer = trace.get_tracer(__name__)
    return tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)


class Database:
    """The engine (its connection pool) and the session factory, made by `running()` for the
    app's lifetime: one engine per process, each worker its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @asynccontextmanager
    async def running(self) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
        """Yields the session factory; closes every pooled connection at the end."""
        self.engine = create_engine(self.settings, database_url(self.settings))
        try:
            yield async_sessionmaker(self.engine, expire_on_commit=False)
        finally:
            await self.engine.dispose()

    async def ping(self) -> None:
        """The readiness check, while running: one round trip (HealthChecks bounds its time)."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


def unavailable(error: BaseException) -> bool:
    """Whether `error` says the database is down or too slow (rather than a bug or bad data)."""
    if isinstance(
        error, (OSError, TimeoutError, exc.OperationalError, exc.InterfaceError, exc.TimeoutError)
    ):
        return True
    if isinstance(error, exc.DBAPIError):
        state = getattr(error.orig, "sqlstate", None)
        return error.connection_invalidated or state in UNAVAILABLE_STATES
    return False


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """This request's own session: committed when the route succeeds, rolled back otherwise."""
    sessions: async_sessionmaker[AsyncSession] = request.state.sessions
    try:
        async with sessions.begin() as session:
            yield session
    except Exception as error:
        if unavailable(error):
            raise DatabaseUnavailable(type(error).__name__) from error
        raise


# scope="function": the commit happens before the response is sent, so a failed commit is
# the client's error response, not a success it already received.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    logger.warning("database unavailable: %s", cast(DatabaseUnavailable, exc))
    return problem(
        request,
        503,
        "The database is unavailable; try again later.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


DATABASE_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "The database is unavailable; see Retry-After"},
}
