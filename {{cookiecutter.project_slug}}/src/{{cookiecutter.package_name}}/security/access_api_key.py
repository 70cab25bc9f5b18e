"""Who may call a route that changes data: a caller with a valid API key (security/api_keys.py).

Routes list `requires(scope)` in their dependencies and document `DENIED` (401); main.py's
lifespan keeps `auth_state(settings)`, the configured keys.
"""

from typing import Any

from fastapi import Depends

from .api_keys import DENIED, auth_state, require_principal

__all__ = ["DENIED", "auth_state", "requires"]


def requires(scope: str) -> Any:
    """A route dependency that lets in callers allowed `scope`: any valid key allows every one."""
    return Depends(require_principal)
