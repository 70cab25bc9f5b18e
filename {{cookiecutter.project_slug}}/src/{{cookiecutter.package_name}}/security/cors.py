"""CORS from an explicit origin list (settings.cors_origins); off when the list is empty.

Starlette's CORSMiddleware, minus its cost on requests without an Origin header (servers,
probes, same-origin loads: most traffic): it parses the request headers and rewrites every
response's headers with a parser to add `Vary: Origin`. Those requests pass straight through
here and get the same `Vary: Origin`, appended; requests with an Origin get Starlette's answer.
"""

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send

from ..settings import Settings

VARY_ORIGIN = (b"vary", b"Origin")


class OriginCORSMiddleware(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), VARY_ORIGIN]
            await send(message)

        await self.app(scope, receive, send_with_vary)


def install_cors(app: FastAPI, settings: Settings) -> None:
    if not settings.cors_origins:
        return  # no browser origin allowed: no middleware on the request path
    app.add_middleware(
        OriginCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID"],
    )
