"""AWS Lambda entry point: API Gateway events (HTTP API v2 or REST API v1) to the ASGI app.

The function's handler is `<package>.lambda_handler.handler`; settings come from the function's
environment variables, as in a container. The app starts once per container, on the cold start
(its lifespan: the pools, the tracer provider...), and every invocation reuses what it made.
The lifespan's shutdown never runs: Lambda freezes an idle container and ends it unannounced,
so each invocation sends its spans and error reports before it returns.
"""

import asyncio
from contextlib import ExitStack
from typing import Any

from mangum import Mangum
from mangum.protocols import LifespanCycle
from mangum.types import LambdaContext, LambdaEvent
from starlette.types import ASGIApp, Receive, Scope, Send

from .main import app
from .observability import error_tracking

# Sent as text, not base64: every media type the service answers with but binary ones.
TEXT_MIME_TYPES = [
    "text/",
    "application/json",
    "application/problem+json",
    "application/javascript",
]


class WithLifespanState:
    """The app, each request given a copy of the lifespan's state, as an ASGI server does."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = self.state.copy()
        await self.app(scope, receive, send)


# The container's one event loop: the lifespan starts on it, and Mangum runs every invocation on
# it (the thread's current loop).
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
# Mangum's lifespan="auto" would start and stop the app around every invocation: we start it
# here, with Mangum's own lifespan cycle (the context manager its docs describe under Lifespan,
# "State machine"; its lifespan_state is what Mangum's adapter gives each request), and never
# stop it.
cold_start = LifespanCycle(app, "on")
running = ExitStack()
running.enter_context(cold_start)
answer = Mangum(
    WithLifespanState(app, cold_start.lifespan_state),
    lifespan="off",
    text_mime_types=TEXT_MIME_TYPES,
)


def handler(event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
    """The function's handler: the answer, once what the invocation traced or reported is sent
    (a frozen container's buffers may never be sent)."""
    try:
        return answer(event, context)
    finally:
        app.state.tracing.flush()
        error_tracking.flush()
