"""The RabbitMQ connection: opened on first use and again after any failure, never at import.

Topology, declared by whoever connects first (all declarations are idempotent):

    exchange BROKER_EXCHANGE (topic, durable)  --#-->  queue BROKER_QUEUE (durable)
    queue <BROKER_QUEUE>.retry.<N>ms: a failed message waits there N ms, then its TTL
        dead-letters it back to BROKER_QUEUE (one queue per wait: retries back off)
    queue <BROKER_QUEUE>.dead: messages that failed BROKER_ATTEMPTS times, kept for a person

Publishing waits for the broker's confirm (publisher confirms), so a returned publish() means
the broker has the message on disk (persistent messages to durable queues).
"""

import asyncio
import logging
import time
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from ..messaging_settings import DEVELOPMENT_BROKER_URL
from ..settings import Settings

logger = logging.getLogger(__name__)
# aiormq logs each failed connection attempt as an ERROR; the relay and the worker log their own
# warning, with what to expect, so its copy is left out.
logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)
# After a failed connection, requests do not try again for this long: each would wait for the
# connect timeout, and the broker is no more likely to be back.
RECONNECT_PAUSE_SECONDS = 1.0
# What a broker that is down, unreachable or refusing looks like from aio-pika.
FAILURES = (*CONNECTION_EXCEPTIONS, asyncio.TimeoutError)


class BrokerUnavailable(Exception):
    """The broker could not be reached, or did not confirm in time: a 503, never a 500."""


def broker_url(settings: Settings) -> str:
    """BROKER_URL, or without one (development only: messaging_settings.py refuses it
    elsewhere) the local RabbitMQ as guest."""
    return settings.broker_url.get_secret_value() or DEVELOPMENT_BROKER_URL


def retry_wait_ms(settings: Settings, attempt: int) -> int:
    """How long a message waits after its `attempt`-th failure (1, 2, ...): doubling."""
    return int(settings.broker_retry_seconds * 1000 * 2 ** (attempt - 1))


def retry_queue(settings: Settings, attempt: int) -> str:
    """The queue a message waits in after its `attempt`-th failure: named by its wait, so that
    another BROKER_RETRY_SECONDS declares new queues rather than clashing with the old ones."""
    return f"{settings.broker_queue}.retry.{retry_wait_ms(settings, attempt)}ms"


def dead_queue(settings: Settings) -> str:
    return f"{settings.broker_queue}.dead"


class Broker:
    """One connection and one confirming channel per process, shared by its tasks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection: AbstractConnection | None = None
        self.channel: AbstractChannel | None = None
        self.exchange: AbstractExchange | None = None
        self.lock = asyncio.Lock()
        self.failed_at = -RECONNECT_PAUSE_SECONDS

    @property
    def connected(self) -> bool:
        return self.channel is not None and not self.channel.is_closed

    async def open(self) -> AbstractChannel:
        """The channel, connecting (and declaring the topology) first if needed."""
        async with self.lock:
            if self.channel is not None and not self.channel.is_closed:
                return self.channel
            if time.monotonic() - self.failed_at < RECONNECT_PAUSE_SECONDS:
                raise BrokerUnavailable("the last connection attempt failed moments ago")
            await self.close()
            try:
                return await self.connect()
            except FAILURES as error:
                self.failed_at = time.monotonic()
                await self.close()
                raise BrokerUnavailable(f"{type(error).__name__}: {error}") from error

    async def connect(self) -> AbstractChannel:
        timeout = self.settings.broker_publish_timeout_seconds
        self.connection = await aio_pika.connect(broker_url(self.settings), timeout=timeout)
        channel = await self.connection.channel(publisher_confirms=True)
        self.exchange = await declare(channel, self.settings)
        self.channel = channel
        logger.info("connected to the broker")
        return channel

    async def publish(
        self, message: aio_pika.Message, routing_key: str, exchange: str = ""
    ) -> None:
        """Publish and wait for the broker's confirm; `exchange` "" is RabbitMQ's default one
        (routing_key is then a queue's name), else the events exchange."""
        channel = await self.open()
        target = self.exchange if exchange else channel.default_exchange
        assert target is not None  # nosec B101: set by connect() with the channel
        try:
            await target.publish(
                message, routing_key, timeout=self.settings.broker_publish_timeout_seconds
            )
        except FAILURES as error:
            await self.close()  # the next use reconnects
            raise BrokerUnavailable(f"{type(error).__name__}: {error}") from error

    async def publish_event(self, message: aio_pika.Message, routing_key: str) -> None:
        await self.publish(message, routing_key, exchange=self.settings.broker_exchange)

    async def ping(self) -> None:
        """The readiness check: connected, or connecting now."""
        await self.open()

    async def close(self) -> None:
        connection = self.connection
        self.connection, self.channel, self.exchange = None, None, None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except FAILURES:
                pass  # already broken: nothing left to close


async def declare(channel: AbstractChannel, settings: Settings) -> AbstractExchange:
    """The exchange, the worker's queue, its retry queues and its dead-letter queue."""
    exchange = await channel.declare_exchange(
        settings.broker_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(settings.broker_queue, durable=True)
    await queue.bind(exchange, routing_key="#")
    for attempt in range(1, settings.broker_attempts):
        arguments: dict[str, Any] = {
            "x-message-ttl": retry_wait_ms(settings, attempt),
            "x-dead-letter-exchange": "",  # the default exchange: back to the worker's queue
            "x-dead-letter-routing-key": settings.broker_queue,
        }
        name = retry_queue(settings, attempt)
        await channel.declare_queue(name, durable=True, arguments=arguments)
    await channel.declare_queue(dead_queue(settings), durable=True)
    return exchange
