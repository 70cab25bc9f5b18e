"""The consumer process: `python -m {{ cookiecutter.package_name }}.worker`.

It consumes BROKER_QUEUE with at most BROKER_PREFETCH messages in hand, reconnects by itself
when the broker goes away, and on SIGTERM (or Ctrl-C) stops taking messages, finishes the ones
in hand, then exits. One JSON line per handled message (LOG_FORMAT=json); its metrics are served
on WORKER_METRICS_PORT (/metrics, Prometheus).
"""

import asyncio
import logging
import signal
from contextlib import suppress

from prometheus_client import start_http_server

{%- if cookiecutter.database != "none" %}

from .db import Database
{%- endif %}
from .messaging.broker import Broker, BrokerUnavailable
from .messaging.consumer import Consumer
from .messaging.dedup import Deduplicator
from .messaging.handlers import handle
from .observability.error_tracking import error_tracking, reported
from .observability.logging import setup_logging
from .observability.tracing import Tracing
from .ports import refuse_busy_port
from .settings import Settings, get_settings

logger = logging.getLogger("{{ cookiecutter.package_name }}.worker")
RECONNECT_MAX_SECONDS = 30.0


async def consume(settings: Settings, consumer: Consumer, stop: asyncio.Event) -> None:
    """Consumes until `stop` is set, connecting again (with backoff) when the broker is lost."""
    broker, failures = consumer.broker, 0
    while not stop.is_set():
        try:
            channel = await broker.open()
            await channel.set_qos(prefetch_count=settings.broker_prefetch)
            queue = await channel.declare_queue(settings.broker_queue, durable=True)
            tag = await queue.consume(consumer.on_message)
            logger.info("consuming", extra={"queue": settings.broker_queue})
            failures = 0
            while broker.connected and not stop.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
            if broker.connected:
                await queue.cancel(tag)  # no new deliveries; those in hand finish below
        except BrokerUnavailable as error:
            failures += 1
            logger.warning("broker unavailable: %s", error)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(2.0**failures / 4, RECONNECT_MAX_SECONDS))


async def run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tracing = Tracing(settings)
    broker = Broker(settings)
{%- if cookiecutter.database != "none" %}
    database = Database(settings)
    async with (
        error_tracking(settings),
        tracing.running(),
        database.running(tracing.provider) as sessions,
    ):
        consumer = Consumer(settings, broker, Deduplicator(reported(handle), sessions))
        await consume(settings, consumer, stop)
        await consumer.drain()
        await broker.close()
{%- else %}
    async with error_tracking(settings), tracing.running():
        consumer = Consumer(settings, broker, Deduplicator(reported(handle)))
        await consume(settings, consumer, stop)
        await consumer.drain()
        await broker.close()
{%- endif %}
    logger.info("stopped")


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    if settings.worker_metrics_port:
        port, off = settings.worker_metrics_port, "to 0 to turn the worker's metrics off"
        refuse_busy_port(settings.host, port, "WORKER_METRICS_PORT", off)
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
