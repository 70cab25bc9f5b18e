"""How database failures answer: a 503 with Retry-After while the database is down or behind the
schema this release needs, a 500 logged with the driver's own error otherwise (db.py tells them
apart). For FastAPI(exception_handlers=...) and the routes' documented responses."""

import logging
from typing import Any, cast

from fastapi import Request
from sqlalchemy import exc

from .db import RETRY_AFTER_SECONDS, DatabaseUnavailable, described
from .errors import Problem, ProblemResponse, problem
from .schema import SchemaBehind

logger = logging.getLogger(__name__)


async def database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    logger.warning("database unavailable: %s", cast(DatabaseUnavailable, exc))
    return problem(
        request,
        503,
        "The database is unavailable; try again later.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def schema_behind(request: Request, exc: Exception) -> ProblemResponse:
    """What is missing and what fixes it: no host, no secret, fit for the client too."""
    logger.warning("database schema behind: %s", exc)
    return problem(request, 503, str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def database_error(request: Request, error: Exception) -> ProblemResponse:
    """Any other database error: a bug or a schema out of step, logged with the driver's own
    error and code; the client gets the usual 500."""
    logger.error("database error on %s: %s", request.url.path, described(error), exc_info=error)
    return problem(request, 500, "The server could not handle the request.")


# For FastAPI(exception_handlers=...), beside the app's own.
DATABASE_ERRORS: dict[Any, Any] = {
    DatabaseUnavailable: database_unavailable,
    SchemaBehind: schema_behind,
    exc.DBAPIError: database_error,
}
DATABASE_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {
        "model": Problem,
        "description": "The database is unavailable, or not migrated yet; see Retry-After",
    },
}
