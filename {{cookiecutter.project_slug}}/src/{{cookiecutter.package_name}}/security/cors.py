"""CORS from an explicit origin list (settings.cors_origins); off when the list is empty.

Starlette's CORSMiddleware does the CORS work. Only a request with an `Origin` header can be a
cross-origin one (browsers send it on every CORS request, preflights included), so the others
skip it: for them Starlette would only add `Vary: Origin`, which this middleware adds itself,
without parsing the request's and the response's headers into mappings.
"""

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..settings import Settings

# Caches must not serve an answer made without an Origin to a browser that sends one.
VARY_ORIGIN = (b"vary", b"Origin")


class OriginCorsMiddleware:
    """CORSMiddleware for requests that carry an Origin; `Vary: Origin` on the others."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, _ in scope["headers"]:
            if name == b"origin":
                await self.cors(scope, receive, send)
                return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), VARY_ORIGIN]
            await send(message)

        await self.app(scope, receive, send_with_vary)


def cors_middleware(settings: Settings) -> list[Middleware]:
    """The CORS middleware for the configured origins; none without origins, so that a
    service no browser may call pays nothing for it."""
    if not settings.cors_origins:
        return []
    return [Middleware(OriginCorsMiddleware, settings=settings)]
