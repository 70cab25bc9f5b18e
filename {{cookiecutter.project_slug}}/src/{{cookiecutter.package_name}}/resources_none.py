"""What the app holds open while it serves: nothing yet, as this service has no database and
no message broker.

main.py enters `open_resources` in its lifespan and maps `RESOURCE_ERRORS` to problems: open
your own clients here, and they live as long as the app.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from .settings import Settings

RESOURCE_ERRORS: dict[Any, Any] = {}  # exception type -> handler, for what these raise


@asynccontextmanager
async def open_resources(app: FastAPI, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """Yields what joins the request state: nothing."""
    yield {}
