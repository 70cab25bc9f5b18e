"""Who may open the realtime WebSocket (a socket publishes): a caller with a valid API key, in
the X-API-Key header or, from a browser (which cannot set headers on a WebSocket), offered as
the subprotocols `api-key, <key>`.

api/realtime.py lists `socket_requires(scope)` in the socket's dependencies and opens it with
`accept`.
"""

from typing import Any

from fastapi import Depends, WebSocket

from .api_keys import HEADER, ApiKeysDep
from .principal import Principal, offered_protocols, protocol_credential, signed_in
from .realtime import refused

WEBSOCKET_PROTOCOL = "api-key"  # offered before the key by browsers; the handshake accepts it


async def require_websocket_principal(websocket: WebSocket, api_keys: ApiKeysDep) -> Principal:
    """The caller behind a valid key, from the X-API-Key header or the `api-key` subprotocol;
    without one, the handshake is refused (closed before it is accepted)."""
    key = websocket.headers.get(HEADER) or protocol_credential(websocket, WEBSOCKET_PROTOCOL)
    principal = api_keys.identify(key) if key else None
    if principal is None:
        raise refused(f"A valid API key is required ({HEADER} or the api-key subprotocol)")
    return signed_in(websocket, principal)


def socket_requires(scope: str) -> Any:
    """A WebSocket dependency that lets in callers allowed `scope`: any valid key allows every
    one."""
    return Depends(require_websocket_principal)


async def accept(websocket: WebSocket) -> None:
    """Completes the handshake; a browser offered its key after WEBSOCKET_PROTOCOL: accept that
    name, never the secret."""
    offered = WEBSOCKET_PROTOCOL in offered_protocols(websocket)
    await websocket.accept(subprotocol=WEBSOCKET_PROTOCOL if offered else None)
