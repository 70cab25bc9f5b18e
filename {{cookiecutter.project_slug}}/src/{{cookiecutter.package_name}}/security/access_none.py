"""Who may call a route that changes data: anyone, as this service has no authentication.

Routes list `requires(scope)` in their dependencies and document `DENIED`: with API keys or
tokens, a version of this module that checks them is the only file to change. main.py's
lifespan keeps `auth_state(settings)`: here, nothing.
"""

from typing import Any

from fastapi import Depends

from ..settings import Settings

DENIED: dict[int | str, dict[str, Any]] = {}  # nobody is refused, so nothing to document


async def anyone() -> None:
    """Lets every caller in."""


def requires(scope: str) -> Any:
    """A route dependency that lets in callers allowed `scope`: here, every caller."""
    return Depends(anyone)


def auth_state(settings: Settings) -> dict[str, Any]:
    """What the lifespan keeps for authentication: nothing without it."""
    return {}
