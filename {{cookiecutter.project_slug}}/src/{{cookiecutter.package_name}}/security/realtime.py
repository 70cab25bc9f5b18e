"""Guards of the realtime endpoints: the WebSocket handshake's Origin, and bounds per client and
in total on open WebSockets, event streams and messages, so that a flood closes the offender,
not the service.

A client is its principal when authentication has set `state.principal` (list the guard after
the auth dependency), else its address as the rate limiter computes it (security/client.py).
Counts live in the process, like the hub they protect.
"""

import time
from dataclasses import dataclass, field
from typing import Literal

from fastapi import WebSocketException, status
from starlette.requests import HTTPConnection

from ..settings import Settings
from .client import TrustedProxies, client_address

Kind = Literal["socket", "stream"]
SWEEP_SECONDS = 1.0  # forget disconnected clients' message budgets at most this often


def refused(detail: str) -> WebSocketException:
    """A handshake refused before it is accepted (servers answer it with HTTP 403)."""
    return WebSocketException(status.WS_1008_POLICY_VIOLATION, detail)


class TooMany(Exception):
    """The client, or everybody together (`everybody`), holds as many connections as allowed."""

    def __init__(self, detail: str, everybody: bool = False) -> None:
        super().__init__(detail)
        self.everybody = everybody


@dataclass
class ClientUse:
    """What one client holds: its open connections, and its message budget (a token bucket)."""

    allowance: float
    checked: float = field(default_factory=time.monotonic)
    sockets: int = 0
    streams: int = 0


class RealtimeGuard:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trusted = TrustedProxies(settings.trusted_proxies, settings.forwarded_header)
        self.rate = settings.realtime_messages_per_second
        self.burst = max(1.0, self.rate)  # up to one second's worth at once
        self.clients: dict[str, ClientUse] = {}
        self.subscribers = 0
        self.swept = time.monotonic()

    def client(self, connection: HTTPConnection) -> str:
        principal = getattr(connection.state, "principal", None)
        if principal:
            return f"principal:{principal}"
        return client_address(connection.scope, self.trusted)

    def origin_allowed(self, connection: HTTPConnection) -> bool:
        """No Origin (not a browser), one of CORS_ORIGINS, or the service's own origin: a page
        of another site cannot open a WebSocket with its visitors' browsers."""
        origin = connection.headers.get("origin")
        allowed = self.settings.cors_origins
        if origin is None or origin in allowed or "*" in allowed:
            return True
        scheme = "https" if connection.url.scheme in ("https", "wss") else "http"
        return origin == f"{scheme}://{connection.url.netloc}"

    def fits(self, text: str) -> bool:
        return len(text.encode()) <= self.settings.realtime_max_message_bytes

    def open(self, client: str, kind: Kind) -> ClientUse:
        """Count one more WebSocket or event stream of the client; TooMany over a bound."""
        if self.subscribers >= self.settings.realtime_max_subscribers:
            raise TooMany("The service holds as many realtime connections as it can", True)
        use = self.clients.get(client) or ClientUse(allowance=self.burst)
        if kind == "socket":
            limit = self.settings.realtime_max_connections_per_client
            if use.sockets >= limit:
                raise TooMany(f"At most {limit} open WebSockets per client")
            use.sockets += 1
        else:
            limit = self.settings.realtime_max_streams_per_client
            if use.streams >= limit:
                raise TooMany(f"At most {limit} open event streams per client")
            use.streams += 1
        self.clients[client] = use
        self.subscribers += 1
        return use

    def close(self, client: str, kind: Kind) -> None:
        use = self.clients[client]
        if kind == "socket":
            use.sockets -= 1
        else:
            use.streams -= 1
        self.subscribers -= 1
        now = time.monotonic()
        if self.idle(use, now):
            del self.clients[client]
        if now - self.swept >= SWEEP_SECONDS:
            self.sweep(now)

    def may_send(self, use: ClientUse) -> bool:
        """Whether the client may publish one more message now (and count it)."""
        now = time.monotonic()
        use.allowance = min(self.burst, use.allowance + (now - use.checked) * self.rate)
        use.checked = now
        if use.allowance < 1:
            return False
        use.allowance -= 1
        return True

    def idle(self, use: ClientUse, now: float) -> bool:
        """Nothing open and a full budget: forgetting the client changes nothing. Until its
        budget refills it is kept, so that reconnecting does not buy a fresh budget."""
        refilled = use.allowance + (now - use.checked) * self.rate >= self.burst
        return not use.sockets and not use.streams and refilled

    def sweep(self, now: float) -> None:
        self.swept = now
        for client, use in list(self.clients.items()):
            if self.idle(use, now):
                del self.clients[client]
