"""What the app holds open while it serves: the database's connection pool, and the outbox's
relay, which publishes to RabbitMQ the events that writes commit.

main.py enters `open_resources` in its lifespan and maps `RESOURCE_ERRORS` to problems; every
bake has this module, in the version for its database and messaging options.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from .db import Database
from .db_errors import DATABASE_ERRORS
from .health import register_check
from .messaging.broker import Broker
from .messaging.outbox import Relay
from .settings import Settings

RESOURCE_ERRORS: dict[Any, Any] = DATABASE_ERRORS  # down, not migrated yet, or another error


@asynccontextmanager
async def open_resources(app: FastAPI, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """Opens the pool and starts the relay; yields what joins the request state."""
    database = Database(settings)
    register_check(app, "database", database.ping)
    async with (
        # The pool, shared by this process's requests; its queries traced by the app's provider.
        database.running(app.state.tracing.provider) as sessions,
        Relay(settings, sessions, Broker(settings)).running() as relay,  # the outbox's
    ):
        yield {
            "sessions": sessions,  # db.SessionDep opens one per request
            "relay": relay,  # messaging.outbox.EventsDep wakes it after each commit
        }
