"""Who is calling: the principal an authenticated route sees, and the 401 problem."""

from typing import Any

from fastapi import HTTPException
{%- if cookiecutter.include_realtime %}
from fastapi import WebSocket
{%- endif %}
from pydantic import BaseModel, ConfigDict
from starlette.requests import HTTPConnection

from ..errors import Problem


class Principal(BaseModel):
    """An authenticated caller: its kind (a user, an API key...), its id, and its scopes."""

    model_config = ConfigDict(frozen=True)  # one instance may serve many requests

    kind: str
    id: str
    scopes: list[str] = []


def signed_in(connection: HTTPConnection, principal: Principal) -> Principal:
    """Record the caller on the request (or WebSocket): per-caller limits are keyed on it."""
    connection.state.principal = f"{principal.kind}:{principal.id}"
    return principal


def unauthorized(detail: str, challenge: str) -> HTTPException:
    """401: no or bad credentials; the challenge tells the client which scheme to use."""
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})
{%- if cookiecutter.include_realtime %}


def offered_protocols(websocket: WebSocket) -> list[str]:
    """The subprotocols a WebSocket client offers (Sec-WebSocket-Protocol), in its order."""
    values = websocket.headers.getlist("sec-websocket-protocol")
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def protocol_credential(websocket: WebSocket, protocol: str) -> str | None:
    """The credential offered as the subprotocol right after `protocol`.

    Browsers cannot set headers on a WebSocket, so a page opens `new WebSocket(url, [protocol,
    credential])`; the handshake accepts `protocol`, never echoing the credential. Not a query
    parameter: proxies and browsers log URLs."""
    offered = offered_protocols(websocket)
    if protocol not in offered[:-1]:
        return None
    return offered[offered.index(protocol) + 1]
{%- endif %}


Responses = dict[int | str, dict[str, Any]]
UNAUTHENTICATED: Responses = {
    401: {"model": Problem, "description": "Missing or invalid credentials"}
}
