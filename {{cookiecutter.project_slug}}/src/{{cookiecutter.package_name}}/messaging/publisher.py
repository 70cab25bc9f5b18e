"""Events published right after the write they describe (no database, so no outbox).

A write is refused with a 503 (Retry-After) before it happens when the broker cannot be
reached, so a client never changes data whose event cannot leave. Once the write is done, its
event is published with the broker's confirm, tried PUBLISH_ATTEMPTS times. What can be lost:
the event of a write whose publish still failed after that (the broker went down in between:
logged as "event lost" and counted in messaging_events_lost_total), and the event of a write
when the process dies before publishing. With a database, the outbox loses neither.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from prometheus_client import Counter

from ..errors import Problem, ProblemResponse, problem
from ..settings import Settings
from .broker import Broker, BrokerUnavailable
from .events import Event, to_message

logger = logging.getLogger(__name__)
PUBLISH_ATTEMPTS = 3
PUBLISH_BACKOFF_SECONDS = 0.1  # doubles
RETRY_AFTER_SECONDS = 2

PUBLISHED = Counter("messaging_events_published_total", "Events the broker confirmed.")
LOST = Counter("messaging_events_lost_total", "Events of done writes that could not be published.")


class Publisher:
    def __init__(self, settings: Settings, broker: Broker | None = None) -> None:
        self.broker = broker or Broker(settings)

    @asynccontextmanager
    async def running(self) -> AsyncIterator["Publisher"]:
        try:
            yield self
        finally:
            await self.broker.close()

    async def ready(self) -> None:
        """Raises BrokerUnavailable when the broker cannot be reached now."""
        await self.broker.open()

    async def add(self, event: Event) -> None:
        """Publishes with the broker's confirm, a few times; logs the event lost if it fails."""
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                await self.broker.publish_event(to_message(event), event.type)
                PUBLISHED.inc()
                return
            except BrokerUnavailable as error:
                if attempt == PUBLISH_ATTEMPTS:
                    LOST.inc()
                    logger.error(
                        "event lost",
                        extra={"event": event.type, "message_id": event.id, "error": str(error)},
                    )
                    return
                await asyncio.sleep(PUBLISH_BACKOFF_SECONDS * 2 ** (attempt - 1))


async def get_events(request: Request) -> Publisher:
    """The publisher the lifespan opened (tests replace it through dependency_overrides)."""
    publisher: Publisher = request.state.publisher
    return publisher


async def nothing_first() -> None:
    """No check before the broker's."""


def ready_publisher(
    after: Callable[..., Awaitable[None]] = nothing_first,
) -> Callable[..., Awaitable[Publisher]]:
    """A dependency giving the publisher, or refusing the request (503) before its write when
    the broker cannot be reached. `after` must pass first: with the route's body check there, a
    bad body is a 422 whether the broker is up or not."""

    async def ready(
        publisher: Annotated[Publisher, Depends(get_events)],
        passed: Annotated[None, Depends(after)],
    ) -> Publisher:
        await publisher.ready()
        return publisher

    return ready


EventsDep = Annotated[Publisher, Depends(ready_publisher())]


async def broker_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    logger.warning("broker unavailable: %s", exc)
    return problem(
        request,
        503,
        "The message broker is unavailable; try again later.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


BROKER_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "The message broker is unavailable; see Retry-After"},
}
