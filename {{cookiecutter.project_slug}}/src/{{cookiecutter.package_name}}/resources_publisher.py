"""What the app holds open while it serves: the publisher, which sends each write's event to
RabbitMQ right after the write (no database, so no outbox).

main.py enters `open_resources` in its lifespan and maps `RESOURCE_ERRORS` to problems; every
bake has this module, in the version for its database and messaging options.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from .messaging.broker import BrokerUnavailable
from .messaging.publisher import Publisher, broker_unavailable
from .settings import Settings

RESOURCE_ERRORS: dict[Any, Any] = {BrokerUnavailable: broker_unavailable}  # 503, Retry-After


@asynccontextmanager
async def open_resources(app: FastAPI, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """Connects the publisher; yields what joins the request state."""
    async with Publisher(settings).running() as publisher:  # events, after each write
        yield {"publisher": publisher}  # messaging.publisher.EventsDep
