"""One pure ASGI middleware for everything observed per request: the timing, the route template,
the metrics, the server span (sampled requests only) and the access-log line.

prometheus-fastapi-instrumentator's own middleware and FastAPI's built-in tracing would each
time and match every request again; this one does it once for all three.
/metrics and the health probes are left alone: not counted, not traced, not logged.
"""

from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..settings import Settings
from .logging import log_access
from .metrics import METRICS_PATH, RequestMetrics
from .tracing import Tracing, end_span

UNOBSERVED_PATHS = frozenset({METRICS_PATH, "/health/live", "/health/ready"})
# An unmatched request is logged by its path, cut short: a scanner's paths can be long.
LOGGED_PATH_LENGTH = 100


def route_template(scope: Scope) -> str | None:
    """The matched route's path template, e.g. /api/v1/orders/{order_id}; None if none.

    Starlette's router and FastAPI put the matched route in the scope under "route", for
    middleware such as this one. Our routers carry their whole prefix (APIRouter(prefix=...)),
    so the route's own path is the full template."""
    return getattr(scope.get("route"), "path", None)


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, tracing: Tracing, settings: Settings) -> None:
        self.app = app
        self.tracing = tracing
        self.metrics = RequestMetrics()
        self.access_log = settings.access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNOBSERVED_PATHS:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # unless a response starts: an exception escaped
        traced = self.tracing.start_span(scope)

        async def send_and_see_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_see_status)
        finally:
            seconds = perf_counter() - started
            method = scope["method"]
            route = route_template(scope)
            self.metrics.record(method, route, status, seconds)
            if self.access_log:
                client = scope.get("client")
                fields = {
                    "method": method,
                    # The metrics group every unmatched path as one; the log shows which it was
                    # (the path only: a query string may hold secrets).
                    "route": route or scope["path"][:LOGGED_PATH_LENGTH],
                    "status": status,
                    # To the hundredth of a millisecond (cheaper than round(x, 2): no decimal)
                    "duration_ms": round(seconds * 100_000) / 100,
                    "client": client[0] if client else None,
                }
                log_access(fields)  # with the trace id: span last
            if traced is not None:
                end_span(*traced, method, route, status)
