"""Who may open the realtime WebSocket (a socket publishes): a bearer token holding the scope,
in the Authorization header or, from a browser (which cannot set headers on a WebSocket),
offered as the subprotocols `bearer, <token>`.

api/realtime.py lists `socket_requires(scope)` in the socket's dependencies and opens it with
`accept`.
"""

from typing import Any

from fastapi import HTTPException, Security, WebSocket
from fastapi.security import SecurityScopes

from .principal import Principal, offered_protocols, protocol_credential, signed_in
from .realtime import refused
from .tokens import TokensDep, authorize

WEBSOCKET_PROTOCOL = "bearer"  # offered before the token by browsers; the handshake accepts it


async def require_websocket_principal(
    security_scopes: SecurityScopes, websocket: WebSocket, tokens: TokensDep
) -> Principal:
    """The check of tokens.require_principal for a WebSocket, the token from the Authorization
    header or the `bearer` subprotocol; a refusal closes the handshake before it is accepted."""
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        token: str | None = credentials
    else:
        token = protocol_credential(websocket, WEBSOCKET_PROTOCOL)
    try:
        principal = authorize(tokens, token, security_scopes)
    except HTTPException as refusal:
        raise refused(str(refusal.detail)) from None
    return signed_in(websocket, principal)


def socket_requires(scope: str) -> Any:
    """A WebSocket dependency that lets in callers whose token holds `scope` (tokens.SCOPES)."""
    return Security(require_websocket_principal, scopes=[scope])


async def accept(websocket: WebSocket) -> None:
    """Completes the handshake; a browser offered its token after WEBSOCKET_PROTOCOL: accept
    that name, never the secret."""
    offered = WEBSOCKET_PROTOCOL in offered_protocols(websocket)
    await websocket.accept(subprotocol=WEBSOCKET_PROTOCOL if offered else None)
