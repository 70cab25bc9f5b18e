"""What the app holds open while it serves: the database's connection pool.

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
from .settings import Settings

RESOURCE_ERRORS: dict[Any, Any] = DATABASE_ERRORS  # down, not migrated yet, or another error


@asynccontextmanager
async def open_resources(app: FastAPI, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """Opens the pool; yields what joins the request state."""
    database = Database(settings)
    register_check(app, "database", database.ping)
    # The pool, shared by this process's requests; its queries traced by the app's provider.
    async with database.running(app.state.tracing.provider) as sessions:
        yield {"sessions": sessions}  # db.SessionDep opens one per request
