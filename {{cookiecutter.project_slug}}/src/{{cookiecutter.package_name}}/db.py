"""The database: one engine per process, one session per request, and its failures named.

main.py opens the `Database` in the app's lifespan; routes take a session through `SessionDep`,
which commits when the route succeeds and rolls back when it raises. Repositories work on that
session; they never commit themselves. The schema is Alembic's (migrations/, in the package):
the service never creates or alters tables, it waits for them (schema.py).

A failure is a 503 only when the database is down or too slow (`unavailable`), or behind the
schema this release needs (`SchemaBehind`); any other database error is a 500 whose log line
carries the driver's own error and code.
"""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, TracerProvider
from prometheus_client import Gauge, Histogram
from sqlalchemy import DateTime, Dialect, MetaData, event, exc
from sqlalchemy.engine import Connection, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from .schema import SchemaBehind, check_migrations, missing_migrations
from .db_settings import DEVELOPMENT_DATABASE_URL
from .settings import Settings

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
# The driver's codes (prefixes) of a database down or too slow rather than a bad query.
# PostgreSQL's SQLSTATEs: class 08 (the connection), a statement cancelled by its timeout, a
# lock not granted in time, a server shutting down or starting, too many connections. SQLite's
# error names: the file locked past the timeout, or not openable.
UNAVAILABLE_CODES = (
    *("08", "57014", "55P03", "57P0", "53300"),
    *("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN"),
)
# The codes of a statement naming a table or column the database lacks: a migration not run?
UNDEFINED_CODES = ("42P01", "42703")
UNDEFINED_SQLITE = ("no such table", "no such column", "has no column named")

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


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp with its time zone on every database: stored in UTC and read back aware,
    on SQLite (which keeps no zone) as on PostgreSQL. A naive datetime is refused."""

    impl = DateTime(timezone=True)  # what migrations and `alembic check` see
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"a datetime without a time zone: {value}; give it one (UTC)")
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:  # SQLite: stored in UTC, read naive
            return value.replace(tzinfo=UTC)
        return value


class DatabaseUnavailable(Exception):
    """The database did not answer in time, or could not be reached: a 503, never a 500. Raised
    by the engine's hooks (`measure`) and by `get_session` for the errors `unavailable` names."""


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or without one (development only: db_settings.py refuses it elsewhere) a
    SQLite file in the working directory."""
    url = settings.database_url.get_secret_value()
    if url:
        return url
    logger.info("no DATABASE_URL: using the local SQLite file (%s)", DEVELOPMENT_DATABASE_URL)
    return DEVELOPMENT_DATABASE_URL


def create_engine(
    settings: Settings, url: str, tracer_provider: TracerProvider | None = None
) -> AsyncEngine:
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
    measure(engine, trace.get_tracer(__name__, tracer_provider=tracer_provider))
    return engine


def measure(engine: AsyncEngine, tracer: Tracer) -> None:
    """The pool's connections in use, each statement's duration and, in a sampled request, its
    span (`tracer`'s): SQLAlchemy's documented events, fired in the request's context."""
    event.listen(engine.sync_engine.pool, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(engine.sync_engine.pool, "checkin", lambda *_: POOL_IN_USE.dec())

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def started(connection: Connection, cursor: Any, statement: str, *_: Any) -> None:
        # One statement at a time per connection: its info holds the statement's own state.
        connection.info["query_started"] = time.perf_counter()
        if trace.get_current_span().is_recording():
            connection.info["query_span"] = query_span(connection, statement, tracer)

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def finished(connection: Connection, *_: Any) -> None:
        QUERY_SECONDS.observe(time.perf_counter() - connection.info["query_started"])
        if span := connection.info.pop("query_span", None):
            span.end()

    @event.listens_for(engine.sync_engine, "handle_error")
    def failed(error: ExceptionContext) -> DatabaseUnavailable | None:
        if error.connection and (span := error.connection.info.pop("query_span", None)):
            span.set_status(StatusCode.ERROR, type(error.original_exception).__name__)
            span.end()
        # The driver's network failing under a statement (raised unwrapped by some drivers): the
        # connection is in an unknown state, so the pool drops it.
        if isinstance(error.original_exception, (OSError, TimeoutError)):
            error.is_disconnect = True
            return DatabaseUnavailable(described(error.original_exception))
        return None

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(dialect: Dialect, _: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        """Opens the connection as SQLAlchemy would, so that a failure to open it is known as
        the database's, not confused with another service's OSError."""
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as error:
            raise DatabaseUnavailable(f"cannot connect: {described(error)}") from error


def query_span(connection: Connection, statement: str, tracer: Tracer) -> Span:
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
    return tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes)


class Database:
    """The engine (its connection pool) and the session factory, made by `running()` for the
    app's lifetime: one engine per process, each worker its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @asynccontextmanager
    async def running(
        self, tracer_provider: TracerProvider | None = None
    ) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
        """Yields the session factory; closes every pooled connection at the end. Queries in
        a sampled request are spans of `tracer_provider` (the app's), else the global one's."""
        check_migrations()  # the package's migrations are readable, before serving anything
        # Alembic's progress lines are for its command line: here every readiness run wrote two.
        logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
        self.engine = create_engine(self.settings, database_url(self.settings), tracer_provider)
        try:
            yield async_sessionmaker(self.engine, expire_on_commit=False)
        finally:
            await self.engine.dispose()

    async def ping(self) -> None:
        """The readiness check, while running: the database answers and is at the schema this
        release needs (else SchemaBehind, whose message /health/ready shows)."""
        async with self.engine.connect() as connection:
            if missing := await connection.run_sync(missing_migrations):
                raise SchemaBehind(missing)


def code(error: BaseException) -> str | None:
    """The driver's error code: PostgreSQL's SQLSTATE, SQLite's error name."""
    code = getattr(error, "sqlstate", None) or getattr(error, "sqlite_errorname", None)
    return None if code is None else str(code)


def driver_error(error: BaseException) -> BaseException:
    """The driver's own exception (PostgreSQL's, SQLite's) under SQLAlchemy's wrapper, if any."""
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        return error.driver_exception
    return error


def described(error: BaseException) -> str:
    """The driver's own error for a log line: its code, class and message."""
    driver = driver_error(error)
    found = code(driver)
    return f"{found + ' ' if found else ''}{type(driver).__name__}: {driver}"


def unavailable(error: BaseException) -> bool:
    """Whether `error` says the database is down or too slow (rather than a bug, bad data, a
    missing table or another service failing): a connection that could not be opened or died,
    the pool's timeout, a statement or lock timeout."""
    if isinstance(error, (DatabaseUnavailable, exc.TimeoutError)):
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    found = code(driver_error(error)) or ""
    return error.connection_invalidated or found.startswith(UNAVAILABLE_CODES)


def undefined(error: exc.DBAPIError) -> bool:
    """Whether the statement named a table or column the database does not have."""
    driver = driver_error(error)
    if code(driver) in UNDEFINED_CODES:
        return True
    message = str(driver)
    return code(driver) == "SQLITE_ERROR" and any(words in message for words in UNDEFINED_SQLITE)


def unique_violation(error: exc.IntegrityError, table: str, column: str) -> bool:
    """Whether `error` is the unique constraint on `table`.`column` refusing a duplicate.

    PostgreSQL names the constraint (the naming convention's uq_<table>_<column>); SQLite keeps
    no constraint names and says "UNIQUE constraint failed: <table>.<column>" instead."""
    driver = driver_error(error)
    if (name := getattr(driver, "constraint_name", None)) is not None:
        names = {"table_name": table, "column_0_name": column}
        return bool(name == NAMING_CONVENTION["uq"] % names)
    return str(driver) == f"UNIQUE constraint failed: {table}.{column}"


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """This request's own session: committed when the route succeeds, rolled back otherwise."""
    sessions: async_sessionmaker[AsyncSession] = request.state.sessions
    async with sessions() as session:
        try:
            async with session.begin():
                yield session
        except exc.SQLAlchemyError as error:
            if unavailable(error):
                raise DatabaseUnavailable(described(error)) from error
            if isinstance(error, exc.DBAPIError) and undefined(error):
                # Was a migration not run? Asked again each time: once it has, this passes.
                connection = await session.connection()
                if missing := await connection.run_sync(missing_migrations):
                    raise SchemaBehind(missing) from error
            raise


# scope="function": the commit happens before the response is sent, so a failed commit is
# the client's error response, not a success it already received.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
