"""The transactional outbox: an event is a row written in the same transaction as the change it
describes, so both are committed or neither is; the relay then publishes the rows.

The relay runs in the service's lifespan rather than in the worker: the process that committed
an event wakes its relay at once (SQLAlchemy's after_commit), so events leave within
milliseconds instead of a polling interval, and the API keeps working while the broker is down
(rows wait, nothing is lost). Several replicas relay side by side: on PostgreSQL each takes its
batch with FOR UPDATE SKIP LOCKED, so no row is published by two at the same time. A row is
marked published only after the broker confirmed it; a crash in between publishes it again,
with the same message id, which the worker recognises as a duplicate.

The relay never stops on an error: whatever fails (the broker, the database, a revoked
privilege, a bug) is logged once per outage (a dependency down as a warning, anything else as
an error with its traceback), counted by error type, and tried again with backoff; the rows
wait meanwhile, and the recovery is logged. The events waiting and the age of the oldest are
measured on every pass, failed or not (alerts.yml).
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request

from prometheus_client import Counter, Gauge
from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    String,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, SessionDep, UtcDateTime, driver_error, unavailable
from ..settings import Settings
from .broker import Broker, BrokerUnavailable
from .events import Event, to_message

logger = logging.getLogger(__name__)
Id = BigInteger().with_variant(Integer(), "sqlite")
# Published rows are kept this long (for a person looking into a lost event), then deleted.
RETENTION = timedelta(hours=1)
PRUNE_EVERY_SECONDS = 60.0
# After a failure the relay waits longer each time, up to this many seconds.
MAX_BACKOFF_SECONDS = 30.0
# At shutdown the pass in progress may finish (its connections go back to the pool) this long.
FINISH_PASS_SECONDS = 2.0

PUBLISHED = Counter("messaging_outbox_published_total", "Outbox events the broker confirmed.")
RELAY_ERRORS = Counter(
    "messaging_outbox_relay_errors_total",
    "Outbox relay passes that failed, by error (the database driver's own, for a database's).",
    ["error"],
)
# Every worker's relay measures the same table: the highest of the live ones is the value.
PENDING = Gauge(
    "messaging_outbox_pending",
    "Outbox events not published yet.",
    multiprocess_mode="livemax",
)
OLDEST_AGE = Gauge(
    "messaging_outbox_oldest_pending_age_seconds",
    "Age in seconds of the oldest outbox event not published yet (0: none waits).",
    multiprocess_mode="livemax",
)


def now() -> datetime:
    return datetime.now(UTC)


class OutboxRow(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Id, primary_key=True)  # publishing order
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(200))  # the routing key
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    headers: Mapped[dict[str, str]] = mapped_column(JSON)  # the trace context
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)


def error_name(error: BaseException) -> str:
    """The label of an error: the driver's own behind a SQLAlchemy error (asyncpg's
    InsufficientPrivilegeError rather than ProgrammingError), otherwise the error's class."""
    return type(driver_error(error)).__name__


class Outbox:
    """Adds events to one request's session (db.SessionDep); its owner commits them."""

    def __init__(self, session: AsyncSession, relay: "Relay") -> None:
        self.session = session
        self.relay = relay

    async def add(self, outgoing: Event) -> None:
        self.session.add(
            OutboxRow(
                message_id=outgoing.id,
                type=outgoing.type,
                data=outgoing.data,
                headers=outgoing.headers,
            )
        )
        # After this session's commit, not before: the relay would find nothing yet.
        event.listen(self.session.sync_session, "after_commit", self.relay.wake, once=True)


class Relay:
    """Publishes the outbox's unpublished rows, oldest first, while the service runs."""

    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], broker: Broker
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.broker = broker
        self.wakeup = asyncio.Event()
        self.pruned_at = -PRUNE_EVERY_SECONDS
        self.outage: set[str] = set()  # the errors of this outage, each logged once
        self.stopping = False

    def wake(self, *_: Any) -> None:
        self.wakeup.set()

    @asynccontextmanager
    async def running(self) -> AsyncIterator["Relay"]:
        task = asyncio.create_task(self.run(), name="outbox relay")
        try:
            yield self
        finally:
            self.stopping = True
            self.wake()
            await asyncio.wait({task}, timeout=FINISH_PASS_SECONDS)
            await stop(task)
            await self.broker.close()

    async def run(self) -> None:
        """Relays until stopped; an error of any kind ends a pass, never the loop."""
        failures = 0
        while not self.stopping:
            self.wakeup.clear()
            try:
                await self.relay_pending()
            except Exception as error:
                failures += 1
                self.report(error)
            else:
                failures = 0
                if self.outage:
                    failed = ", ".join(sorted(self.outage))
                    logger.info("outbox relay recovered (after %s); publishing again", failed)
                    self.outage.clear()
            wait = self.settings.outbox_poll_seconds * 2 ** min(failures, 5)
            with suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), min(wait, MAX_BACKOFF_SECONDS))

    async def relay_pending(self) -> None:
        """One pass: publishes what waits, prunes, and measures what still waits (even when
        publishing failed: a SELECT may work where the relay's UPDATE does not)."""
        try:
            while await self.relay_batch() == self.settings.outbox_batch_size:
                pass  # a full batch: there may be more
            await self.prune()
        except Exception:
            await self.measure()
            raise
        await self.measure()

    def report(self, error: Exception) -> None:
        """Counts every failed pass; logs an error the first time this outage meets it."""
        name = error_name(error)
        RELAY_ERRORS.labels(name).inc()
        if name in self.outage:
            return
        self.outage.add(name)
        message = "outbox relay failed: %s: %s; the events wait in the outbox, tried again later"
        if isinstance(error, BrokerUnavailable) or unavailable(error):
            # A dependency down, expected now and then (RabbitMQ not started in development).
            logger.warning(message, type(error).__name__, error)
        else:  # anything else is a bug or a misconfiguration: its traceback says where
            logger.error(message, type(error).__name__, error, exc_info=error)

    async def measure(self) -> None:
        async with self.sessions() as session:
            waiting = select(func.count(), func.min(OutboxRow.created_at))
            pending = waiting.where(OutboxRow.published_at.is_(None))
            count, oldest = (await session.execute(pending)).one()
        PENDING.set(count)
        if oldest is None:
            OLDEST_AGE.set(0)
        else:
            OLDEST_AGE.set(max((now() - oldest).total_seconds(), 0))

    async def relay_batch(self) -> int:
        """Publishes one batch; returns how many rows it published."""
        await self.broker.open()  # before a transaction: a broker down holds no connection
        published: list[int] = []
        failure: BrokerUnavailable | None = None
        async with self.sessions.begin() as session:
            rows = await session.scalars(
                select(OutboxRow)
                .where(OutboxRow.published_at.is_(None))
                .order_by(OutboxRow.id)
                .limit(self.settings.outbox_batch_size)
                .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
            )
            batch = list(rows)
            # All sent at once on the confirming channel, each awaiting its own confirm: one
            # round trip per batch rather than per row.
            results = await asyncio.gather(
                *(self.publish(row) for row in batch), return_exceptions=True
            )
            for row, result in zip(batch, results):
                if isinstance(result, BrokerUnavailable):
                    failure = result
                elif isinstance(result, BaseException):
                    raise result
                else:
                    published.append(row.id)
            # What the broker confirmed is marked (and committed), even if a later one failed.
            if published:
                marked = update(OutboxRow).where(OutboxRow.id.in_(published))
                await session.execute(marked.values(published_at=now()))
        PUBLISHED.inc(len(published))
        if failure is not None:
            raise failure
        return len(published)

    async def publish(self, row: OutboxRow) -> None:
        outgoing = Event(row.type, row.data, row.message_id, row.headers)
        await self.broker.publish_event(to_message(outgoing), row.type)

    async def prune(self) -> None:
        """Deletes the rows published longer ago than RETENTION, at most once a minute."""
        if time.monotonic() - self.pruned_at < PRUNE_EVERY_SECONDS:
            return
        async with self.sessions.begin() as session:
            expired = OutboxRow.published_at < now() - RETENTION
            await session.execute(delete(OutboxRow).where(expired))
        self.pruned_at = time.monotonic()


async def get_events(session: SessionDep, request: Request) -> Outbox:
    """The outbox of this request's session: its events commit with its changes."""
    return Outbox(session, request.state.relay)


EventsDep = Annotated[Outbox, Depends(get_events)]


async def stop(task: "asyncio.Task[None]") -> None:
    """Cancels the task and waits for it to end. Cancelled again while it has not: a library
    call may swallow one cancellation (a connection attempt; asyncio.wait_for on Python 3.11
    when its timeout and the cancellation meet), and the service must still stop."""
    for _ in range(50):
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
        if task.done():
            break
    else:
        logger.warning("outbox relay: still running at shutdown; left behind")
    if task.done() and not task.cancelled() and task.exception() is not None:
        logger.error("outbox relay failed", exc_info=task.exception())
