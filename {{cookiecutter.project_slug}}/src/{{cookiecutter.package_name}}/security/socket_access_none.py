"""Who may open the realtime WebSocket (a socket publishes): anyone, as this service has no
authentication.

api/realtime.py lists `socket_requires(scope)` in the socket's dependencies and opens it with
`accept`: with API keys or tokens, a version of this module that checks them is the only file
to change.
"""

from typing import Any

from fastapi import Depends, WebSocket


async def anyone() -> None:
    """Lets every caller in."""


def socket_requires(scope: str) -> Any:
    """A WebSocket dependency that lets in callers allowed `scope`: here, every caller."""
    return Depends(anyone)


async def accept(websocket: WebSocket) -> None:
    """Completes the handshake."""
    await websocket.accept()
