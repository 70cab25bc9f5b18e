"""Who may call a route that changes data: a bearer token holding the route's scope
(security/tokens.py).

Routes list `requires(scope)` in their dependencies and document `DENIED` (401, 403); main.py's
lifespan keeps `auth_state(settings)`: the token authority, and the users who may sign in.
"""

from typing import Any

from fastapi import Security

from .tokens import DENIED, auth_state, require_principal

__all__ = ["DENIED", "auth_state", "requires"]


def requires(scope: str) -> Any:
    """A route dependency that lets in callers whose token holds `scope` (tokens.SCOPES)."""
    return Security(require_principal, scopes=[scope])
