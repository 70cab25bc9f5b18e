"""Request ids: accept a well-formed incoming X-Request-ID, else make one; return it always.

Pure ASGI middleware (a Starlette base-middleware class would cost a task and a copy per
request). The id is kept in a context variable, for the logs, until the request ends, and in the
request state, for the error handlers (the 500 handler runs after the middlewares have ended:
logging.request_context puts the id back for its log line).
"""

import re
import secrets
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
# Letters, digits and ._:- only, at most 128: safe to log and to echo back.
WELL_FORMED = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode() if WELL_FORMED.fullmatch(value) else None
    return None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        header = (HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
