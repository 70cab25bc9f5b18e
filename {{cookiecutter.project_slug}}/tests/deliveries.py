"""Stand-ins for what the worker consumes: a delivery as aio-pika hands it over, a handler that
records what it ran on, and the consumer run on them against the fake broker."""

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, cast

from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import REGISTRY

{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.package_name }}.db import Database
{%- endif %}
from {{ cookiecutter.package_name }}.messaging.broker import Broker
from {{ cookiecutter.package_name }}.messaging.consumer import Consumer
from {{ cookiecutter.package_name }}.messaging.dedup import Deduplicator, Handler
from {{ cookiecutter.package_name }}.messaging.events import Event
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import run_async
from .fake_broker import FakeBroker


@dataclass
class FakeDelivery:
    """What aio-pika hands the consumer callback, with ack() recorded."""

    body: bytes
    message_id: str | None = "id-1"
    type: str | None = "article.created"
    headers: dict[str, Any] = field(default_factory=dict)
    routing_key: str | None = "article.created"
    content_type: str | None = "application/json"
    redelivered: bool = False
    acked: int = 0

    async def ack(self) -> None:
        self.acked += 1


def delivery(data: Any = None, **fields: Any) -> AbstractIncomingMessage:
    body = json.dumps({"id": 1, "version": 1} if data is None else data).encode()
    return cast(AbstractIncomingMessage, FakeDelivery(body, **fields))


def sample(name: str, **labels: str) -> float:
    """A metric's value in this process, 0 before its first use."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Handled:
    """A handler that records what it ran on, and fails for the ids in `failing`."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.ids: list[str] = []

    async def __call__(self, event: Event, *_: Any) -> None:
        if event.id in self.failing:
            raise RuntimeError("the handler failed")
        self.ids.append(event.id)


def consume(
    settings: Settings,
    handler: Handler,
    *deliveries: AbstractIncomingMessage,
    at_once: bool = False,
    broker: FakeBroker | None = None,
) -> FakeBroker:
    """Runs the consumer on `deliveries`, one after the other or all at once (as a prefetch
    above one does); returns the broker it used."""
    broker = broker or FakeBroker()

    async def work() -> None:
{%- if cookiecutter.database != "none" %}
        async with Database(settings).running() as sessions:
            deduplicator = Deduplicator(handler, sessions)
            await deliver(Consumer(settings, cast(Broker, broker), deduplicator))
{%- else %}
        await deliver(Consumer(settings, cast(Broker, broker), Deduplicator(handler)))
{%- endif %}

    async def deliver(consumer: Consumer) -> None:
        if at_once:
            await asyncio.gather(*(consumer.on_message(m) for m in deliveries))
        else:
            for message in deliveries:
                await consumer.on_message(message)

    run_async(work())
    return broker
