"""The edge every request crosses first: an allowed Host, a bounded body, security headers.

Starlette's TrustedHostMiddleware and FastAPI's `max_body_size` answer in plain text, outside
the middleware stack (no security headers, no request id); this pure ASGI middleware answers
with problems: 400 for a Host not in ALLOWED_HOSTS, 413 for a body over MAX_BODY_BYTES
(announced by Content-Length, or counted while it streams), and gives every response one
precomputed list of security headers, refusals included.
"""

from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import problem
from ..observability.metrics import METRICS_PATH
from ..settings import Settings
from .docs import docs_headers_by_path
from .headers import api_headers

# Orchestrators probe health, and Prometheus scrapes, by pod address, not by the service's name.
HOST_CHECK_EXEMPT = "/health/"


class ContentTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class HostRule:
    """Exact names, and '*.example.com' for any subdomain of example.com."""

    def __init__(self, allowed: Iterable[str]) -> None:
        names = [name.lower().strip("[]") for name in allowed]
        self.exact = frozenset(name for name in names if not name.startswith("*."))
        self.suffixes = tuple(name[1:] for name in names if name.startswith("*."))

    def allows(self, host: bytes) -> bool:
        name = host.decode("latin-1").lower()
        if name.startswith("["):  # [::1]:8000
            name = name[1 : name.find("]")]
        elif name.count(":") == 1:
            name = name.split(":")[0]
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))


def count_body(receive: Receive, limit: int) -> Receive:
    received = 0

    async def receive_counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise ContentTooLarge(limit)  # the route's handlers answer it as a problem
        return message

    return receive_counted


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.headers = api_headers(settings)
        self.headers_by_path = docs_headers_by_path(settings)  # the docs pages' own policy
        hosts = settings.allowed_hosts
        self.hosts = None if "*" in hosts else HostRule(hosts)  # None: any Host
        self.max_body_bytes = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not self.host_allowed(scope):
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = self.headers_by_path.get(scope["path"], self.headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = message.get("headers", ())
                extra = headers
                for name, _ in own:  # a loop, not any(): no generator made per response
                    if name == b"cache-control":
                        # A route that chose its own caching keeps it (no duplicate header).
                        extra = [h for h in headers if h[0] != b"cache-control"]
                        break
                message["headers"] = [*own, *extra]
            await send(message)

        length = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
        if not self.host_allowed(scope):
            detail = "The Host header names a host this service does not serve."
            await problem(Request(scope), 400, detail)(scope, receive, send_with_headers)
        elif not length.isdigit():  # chunked, or no body: count what arrives
            await self.app(scope, count_body(receive, self.max_body_bytes), send_with_headers)
        elif int(length) > self.max_body_bytes:
            error = ContentTooLarge(self.max_body_bytes)
            await problem(Request(scope), 413, error.detail)(scope, receive, send_with_headers)
        else:  # the server delivers no more than Content-Length bytes
            await self.app(scope, receive, send_with_headers)

    def host_allowed(self, scope: Scope) -> bool:
        path = scope["path"]
        if self.hosts is None or path.startswith(HOST_CHECK_EXEMPT) or path == METRICS_PATH:
            return True
        for name, value in scope["headers"]:
            if name == b"host":
                return self.hosts.allows(value)
        return False
