"""What travels: an event is a type (its routing key, e.g. article.created), a JSON body, a
message id (the consumer's key against duplicates), the publishing request's trace context and
the time it was created (the worker measures the end-to-end latency from it)."""

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from opentelemetry import propagate

ATTEMPT_HEADER = "x-attempt"  # how many times the worker has run its handler on this message
CREATED_HEADER = "x-created-at"  # seconds since the epoch, when the write made the event


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # traceparent/tracestate of the request that caused it: the worker's span continues its trace
    headers: dict[str, str] = field(default_factory=dict)


def new_event(type: str, data: dict[str, Any]) -> Event:
    """An event carrying its creation time and the current trace context (nothing when the
    request is not sampled)."""
    headers = {CREATED_HEADER: f"{time.time():.6f}"}
    propagate.inject(headers)
    return Event(type, data, headers=headers)


def article_event(type: str, row: dict[str, Any]) -> Event:
    """article.created / article.updated / article.deleted, with the article as clients see it."""
    fields = ("id", "name", "price", "in_stock", "version")
    return new_event(f"article.{type}", {name: row[name] for name in fields if name in row})


def to_message(event: Event) -> aio_pika.Message:
    return aio_pika.Message(
        json.dumps(event.data, separators=(",", ":")).encode(),
        message_id=event.id,
        type=event.type,
        headers={**event.headers, ATTEMPT_HEADER: 0},
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,  # on disk in a durable queue
    )
