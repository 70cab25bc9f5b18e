"""API keys: the X-API-Key header, checked against the SHA-256 digests in the settings.

The settings hold `name:digest` pairs, never the keys, so a leaked .env or config map leaks no
key. `make api-key NAME=<name>` prints a new key and its pair. Every digest is compared in
constant time and the loop never stops early, so the time taken tells nothing about the keys.
An API key may call every protected route (keys have no scopes).
"""

import hashlib
import hmac
import secrets
import sys
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from starlette.requests import HTTPConnection

from ..settings import ENV_PREFIX, Settings
from .principal import UNAUTHENTICATED, Principal, signed_in, unauthorized

HEADER = "X-API-Key"
CHALLENGE = "APIKey"  # no standard scheme exists; FastAPI's own APIKeyHeader answers the same
DENIED = UNAUTHENTICATED  # what a protected route documents
api_key_header = APIKeyHeader(
    name=HEADER, auto_error=False, description="An API key (`make api-key` makes one)"
)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, digests: Mapping[str, str]) -> None:
        # Each key's principal is made once: a request only hashes and compares.
        self.entries = [
            (bytes.fromhex(digest), Principal(kind="api_key", id=name))
            for name, digest in digests.items()
        ]

    def identify(self, key: str) -> Principal | None:
        """The principal of the key's entry, or None."""
        presented = hashlib.sha256(key.encode()).digest()
        found = None
        for digest, principal in self.entries:  # no early exit: every key costs the same
            if hmac.compare_digest(presented, digest):
                found = principal
        return found


def auth_state(settings: Settings) -> dict[str, Any]:
    """What the lifespan keeps for authentication (main.py): the configured keys."""
    return {"api_keys": ApiKeys(settings.api_key_digests)}


async def get_api_keys(connection: HTTPConnection) -> ApiKeys:
    api_keys: ApiKeys = connection.state.api_keys
    return api_keys


ApiKeysDep = Annotated[ApiKeys, Depends(get_api_keys)]


async def require_principal(
    request: Request,
    key: Annotated[str | None, Security(api_key_header)],
    api_keys: ApiKeysDep,
) -> Principal:
    """The caller behind a valid X-API-Key; 401 otherwise."""
    principal = api_keys.identify(key) if key else None
    if principal is None:
        raise unauthorized(f"A valid API key is required in the {HEADER} header", CHALLENGE)
    return signed_in(request, principal)


def main(argv: list[str]) -> None:
    """Print a new random key, for the client, and the name:digest pair for the settings."""
    name = argv[0] if argv else "client"
    key = secrets.token_urlsafe(32)
    print(f"API key for the client (shown once, store it in their secret store): {key}")
    print(f"Add to {ENV_PREFIX}API_KEY_DIGESTS (comma-separated): {name}:{hash_api_key(key)}")


if __name__ == "__main__":
    main(sys.argv[1:])
