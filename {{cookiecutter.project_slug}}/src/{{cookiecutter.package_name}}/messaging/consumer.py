"""The worker's handling of one delivery, however often it arrives.

A message is acknowledged only after its handler succeeded. A failed handler does not block
the queue: the message is re-published to a retry queue that returns it after a wait that
doubles each time, and after BROKER_ATTEMPTS runs to <queue>.dead. A message delivered again
(a worker killed before its ack, a publish repeated by the outbox relay) is recognised by its
id and acknowledged without running the handler again (messaging/dedup.py says how surely).
"""

import asyncio
import json
import logging
import math
import time
from contextlib import suppress
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import Counter, Histogram

from ..settings import Settings
from .broker import Broker, BrokerUnavailable, dead_queue, retry_queue
from .dedup import Deduplicator
from .events import ATTEMPT_HEADER, CREATED_HEADER, Event

logger = logging.getLogger(__name__)

CONSUMED = Counter("messaging_consumed_total", "Messages handled and acknowledged.", ["event"])
FAILED = Counter(
    "messaging_failed_total", "Handler runs that failed (then retried or dead).", ["event"]
)
DEAD_LETTERED = Counter(
    "messaging_dead_lettered_total", "Messages moved to the dead-letter queue.", ["event"]
)
# How long SIGTERM waits for the messages in hand (Kubernetes' grace period is 30 s).
DRAIN_SECONDS = 25.0
DUPLICATES = Counter("messaging_duplicates_total", "Deliveries of already handled messages.")
END_TO_END = Histogram(
    "messaging_end_to_end_seconds",
    "From the write that made an event to its handling (waits and retries included), by event.",
    ["event"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)


def observe_end_to_end(kind: str, created: object) -> None:
    """Times a handled event from its creation; a message without a readable creation time (one
    published by another program) is not timed. The clocks of the service and the worker must
    agree (NTP): an event from a clock ahead counts as handled at once."""
    try:
        seconds = time.time() - float(str(created))
    except ValueError:
        return
    if math.isfinite(seconds):
        END_TO_END.labels(kind).observe(max(seconds, 0.0))


class PoisonMessage(Exception):
    """A message no retry can help (no id, a body that is not JSON): dead-lettered at once."""


def decode(message: AbstractIncomingMessage) -> Event:
    if not message.message_id:
        raise PoisonMessage("no message id")
    try:
        data = json.loads(message.body)
    except ValueError as error:
        raise PoisonMessage(f"the body is not JSON: {error}") from None
    headers = {k: str(v) for k, v in (message.headers or {}).items() if k != ATTEMPT_HEADER}
    return Event(message.type or message.routing_key or "", data, message.message_id, headers)


class Consumer:
    def __init__(self, settings: Settings, broker: Broker, deduplicator: Deduplicator) -> None:
        self.settings = settings
        self.broker = broker
        self.deduplicator = deduplicator
        self.tracer = trace.get_tracer(__name__)
        self.in_hand = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def drain(self) -> None:
        """Waits for the messages in hand to finish (bounded: a lost broker cannot ack them)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), DRAIN_SECONDS)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """aio-pika's consumer callback: one delivery, acked, retried or dead-lettered."""
        self.in_hand += 1
        self.idle.clear()
        try:
            await self.process(message)
        except BrokerUnavailable as error:  # not acked: the broker delivers it again
            logger.warning("broker lost while handling a message: %s", error)
        finally:
            self.in_hand -= 1
            if not self.in_hand:
                self.idle.set()

    async def process(self, message: AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        attempt = int(str(headers.get(ATTEMPT_HEADER, 0))) + 1
        kind = message.type or message.routing_key or "unknown"
        parent = propagate.extract({k: str(v) for k, v in headers.items()})
        with self.tracer.start_as_current_span(
            f"{kind} process", parent, SpanKind.CONSUMER, record_exception=False
        ) as span:
            span.set_attributes(
                {"messaging.system": "rabbitmq", "messaging.message.id": str(message.message_id)}
            )
            try:
                outcome = await self.deduplicator.run(decode(message))
            except Exception as error:  # the handler's failure, whatever it is: retry it
                span.set_status(StatusCode.ERROR, type(error).__name__)
                await self.fail(message, kind, attempt, error)
                return
            await message.ack()
            if outcome == "handled":
                CONSUMED.labels(kind).inc()
                observe_end_to_end(kind, headers.get(CREATED_HEADER))
            else:
                DUPLICATES.inc()
            logger.info(  # inside the span: the line carries the trace id
                outcome,
                extra={
                    "event": kind,
                    "message_id": message.message_id,
                    "attempt": attempt,
                    "redelivered": message.redelivered,
                },
            )

    async def fail(
        self, message: AbstractIncomingMessage, kind: str, attempt: int, error: Exception
    ) -> None:
        """Re-publishes the message to wait and come back, or to the dead-letter queue, then
        acks this delivery (the copy is confirmed first: nothing is lost in between)."""
        FAILED.labels(kind).inc()
        dead = isinstance(error, PoisonMessage) or attempt >= self.settings.broker_attempts
        target = dead_queue(self.settings) if dead else retry_queue(self.settings, attempt)
        headers: dict[str, Any] = {**(message.headers or {}), ATTEMPT_HEADER: attempt}
        if dead:
            headers["x-error"] = f"{type(error).__name__}: {error}"[:500]
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            message_id=message.message_id,
            type=message.type,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self.broker.publish(copy, target)
        await message.ack()
        if dead:
            DEAD_LETTERED.labels(kind).inc()
        logger.warning(
            "dead-lettered" if dead else "failed, will retry",
            extra={
                "event": kind,
                "message_id": message.message_id,
                "attempt": attempt,
                "error": f"{type(error).__name__}: {error}",
            },
        )
