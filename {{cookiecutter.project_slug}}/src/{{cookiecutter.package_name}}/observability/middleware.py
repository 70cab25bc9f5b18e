"""One pure ASGI middleware for everything observed per request: the timing, the route template
(resolved once), the metrics, the server span (sampled requests only) and the access-log line.

/metrics and the health probes are left alone: not counted, not traced, not logged.
"""

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from time import perf_counter
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..health import router as health_router
from ..settings import Settings
from .logging import access_log
from .metrics import METRICS_PATH, RequestMetrics, install_metrics
from .tracing import Tracing, end_span

PROBES = [route.path for route in health_router.routes if isinstance(route, APIRoute)]
UNOBSERVED_PATHS = frozenset({METRICS_PATH, *PROBES})


def route_template(scope: Scope) -> str | None:
    """The matched route's path template, e.g. /api/v1/orders/{order_id}; None if none."""
    # FastAPI 0.116+ resolves an included router's route to an "effective" one with the prefix.
    fastapi_scope = scope.get("fastapi")
    route = fastapi_scope.get("effective_route_context") if fastapi_scope else None
    path: str | None = getattr(route or scope.get("route"), "path_format", None)
    return path


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing
        self.metrics = RequestMetrics()
        # Plain Starlette routes (the docs pages) leave only their endpoint in the scope.
        self.endpoint_paths: dict[Any, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNOBSERVED_PATHS:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # unless a response starts: an exception escaped
        span = self.tracing.start_span(scope)

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
            route = route_template(scope) or self.endpoint_path(scope)
            self.metrics.record(method, route, status, seconds)
            if span is not None:
                end_span(span, method, route, status)
            if access_log.enabled:
                client = scope.get("client")
                access_log.write(method, route, status, seconds, client[0] if client else None)

    def endpoint_path(self, scope: Scope) -> str | None:
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return None
        if self.endpoint_paths is None:
            routes = scope["app"].routes
            self.endpoint_paths = {
                getattr(r, "endpoint", None): r.path for r in routes if hasattr(r, "path")
            }
        return self.endpoint_paths.get(endpoint)


async def flush_every_second() -> None:
    while True:
        await asyncio.sleep(1)
        access_log.flush()


def install_observability(app: FastAPI, settings: Settings) -> None:
    """/metrics, tracing and the access log; install it last, so that it runs first."""
    tracing = Tracing(settings)
    app.state.tracing = tracing

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracing.start()
        flusher = asyncio.create_task(flush_every_second())
        # Objects made so far live as long as the app: out of the collector's way, which
        # otherwise stalls requests for tens of ms (long full collections under tracing).
        # Then the collector is on again (`python -m` starts with it off: __main__.py).
        gc.freeze()
        gc.enable()
        yield
        flusher.cancel()
        access_log.flush()
        tracing.shutdown()

    install_metrics(app, settings)
    app.include_router(APIRouter(lifespan=lifespan))
    app.add_middleware(ObservabilityMiddleware, tracing=tracing)
