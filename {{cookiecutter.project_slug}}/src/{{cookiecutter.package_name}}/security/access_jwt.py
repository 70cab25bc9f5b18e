"""Who may call a route that changes data: a bearer token holding the route's scope
(security/tokens.py).

Routes list `requires(scope)` in their dependencies and document `DENIED` (401, 403).
"""

from typing import Any

from fastapi import Security

from .tokens import DENIED, require_principal

__all__ = ["DENIED", "requires"]


def requires(scope: str) -> Any:
    """A route dependency that lets in callers whose token holds `scope` (tokens.SCOPES)."""
    return Security(require_principal, scopes=[scope])
