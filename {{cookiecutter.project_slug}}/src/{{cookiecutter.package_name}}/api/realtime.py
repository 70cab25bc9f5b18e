"""/api/v1/realtime: a WebSocket chat (echo and broadcast) and a Server-Sent Events stream.

A text sent on the WebSocket, or POSTed to /messages, reaches every WebSocket client (the
sender included) and every SSE listener as {"id": n, "text": "..."}.
Publishing, by POST /messages or by the WebSocket (checked at its handshake), needs what
security/access.py and security/socket_access.py grant the realtime:write scope; the event
stream is open to all, like every read.
Handshakes from another site's pages are refused, and every client is bounded in WebSockets,
event streams, message size and message rate (security/realtime.py).
"""

import asyncio
import json
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from ..contract import max_length_from
from ..domain.broadcast import Broadcaster, Message, Subscription
from ..errors import Problem
from ..security.access import DENIED, requires
from ..security.rate_limit import RATE_LIMITED, RateLimitedRoute, rate_limit
from ..security.realtime import ClientUse, RealtimeGuard, TooMany, refused
from ..security.socket_access import accept, socket_requires
from . import API_PREFIX

KEEPALIVE_SECONDS = 15.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How long a stop waits for the sockets and streams to close themselves before the server is told.
DRAIN_SECONDS = 1.0


@contextmanager
def closed_on_stop_signal(broadcaster: Broadcaster) -> Iterator[None]:
    """Close the hub as soon as the process is told to stop: its streams send their last
    frame and its sockets close with 1001, then the server is told.

    uvicorn runs the lifespan's shutdown only after every connection has ended, and a stream or
    a socket never ends by itself, so closing the hub there would come too late. uvicorn offers
    no shutdown hook; the handler it installed for these signals is public through
    signal.getsignal, so ours closes the hub, then calls it, and is replaced by it again at the
    end. (loop.add_signal_handler would displace uvicorn's handler and restore none.) Signals
    reach only the main thread: elsewhere, as under a test client, nothing is chained.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    passing_on: set[asyncio.Task[None]] = set()

    async def close_then_pass_on(number: int, frame: FrameType | None) -> None:
        # Told to stop, uvicorn closes the sockets still open with 1012 (restart): let ours
        # send their 1001 first. A client that does not read holds the stop DRAIN_SECONDS.
        broadcaster.close()
        deadline = loop.time() + DRAIN_SECONDS
        while broadcaster.subscriptions and loop.time() < deadline:
            await asyncio.sleep(0.01)
        handler = previous[number]
        if callable(handler):
            handler(number, frame)

    def on_loop(number: int, frame: FrameType | None) -> None:
        task = loop.create_task(close_then_pass_on(number, frame))
        passing_on.add(task)
        task.add_done_callback(passing_on.discard)

    def stop(number: int, frame: FrameType | None) -> None:
        # A signal handler may interrupt the loop anywhere: the rest runs on the loop.
        loop.call_soon_threadsafe(on_loop, number, frame)

    for number in STOP_SIGNALS:
        if callable(previous[number]):  # a server's handler; the default ends the process
            signal.signal(number, stop)
    try:
        yield
    finally:
        for stopping, handler in previous.items():
            if callable(handler):
                signal.signal(stopping, handler)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    broadcaster = Broadcaster()
    with closed_on_stop_signal(broadcaster):
        yield {"broadcaster": broadcaster, "realtime_guard": RealtimeGuard(app.state.settings)}
    broadcaster.close()  # in case no signal came: a test client, a server stopped otherwise


async def get_broadcaster(connection: HTTPConnection) -> Broadcaster:
    broadcaster: Broadcaster = connection.state.broadcaster
    return broadcaster


async def get_guard(connection: HTTPConnection) -> RealtimeGuard:
    guard: RealtimeGuard = connection.state.realtime_guard
    return guard


BroadcasterDep = Annotated[Broadcaster, Depends(get_broadcaster)]
GuardDep = Annotated[RealtimeGuard, Depends(get_guard)]


async def check_origin(websocket: WebSocket, guard: GuardDep) -> None:
    if not guard.origin_allowed(websocket):
        raise refused("Origin not allowed: not this service's, nor one of CORS_ORIGINS")


async def socket_slot(websocket: WebSocket, guard: GuardDep) -> AsyncIterator[ClientUse]:
    """One of the client's WebSockets, held until the socket closes."""
    client = guard.client(websocket)
    try:
        use = guard.open(client, "socket")
    except TooMany as error:
        raise refused(str(error)) from None
    try:
        yield use
    finally:
        guard.close(client, "socket")


SocketSlotDep = Annotated[ClientUse, Depends(socket_slot)]


async def stream_slot(request: Request, guard: GuardDep) -> AsyncIterator[None]:
    """One of the client's event streams, held until the response ends (429, or 503 when the
    service holds as many as it can)."""
    client = guard.client(request)
    try:
        guard.open(client, "stream")
    except TooMany as error:
        status = 503 if error.everybody else 429
        raise HTTPException(status, str(error), headers={"Retry-After": "1"}) from None
    try:
        yield
    finally:
        guard.close(client, "stream")


Responses = dict[int | str, dict[str, Any]]
STREAMS_BOUNDED: Responses = {
    200: {
        "description": "Server-Sent Events: a `data:` frame per message",
        "content": {"text/event-stream": {}},  # frames without end: no schema bounds them
    },
    429: {"model": Problem, "description": "The client holds as many streams as it may"},
    503: {"model": Problem, "description": "The service holds as many streams as it can"},
}
router = APIRouter(
    prefix=f"{API_PREFIX}/realtime",
    route_class=RateLimitedRoute,
    tags=["realtime"],
    lifespan=lifespan,
    responses=RATE_LIMITED,
)


class MessageIn(BaseModel):
    # Documented as at most that many characters, the most that many bytes can hold.
    text: str = Field(
        min_length=1,
        description="At most REALTIME_MAX_MESSAGE_BYTES in UTF-8",
        json_schema_extra=max_length_from("realtime_max_message_bytes"),
    )


async def valid_message(message: MessageIn, guard: GuardDep) -> None:
    """The body, validated before the write limit counts the request: a 422 costs nothing.
    A text over REALTIME_MAX_MESSAGE_BYTES is an invalid field like any other."""
    if not guard.fits(message.text):
        limit = guard.settings.realtime_max_message_bytes
        error = {"loc": ("body", "text"), "msg": f"at most {limit} bytes in UTF-8"}
        raise RequestValidationError([error | {"type": "string_too_long"}])


WRITE_LIMIT = Depends(rate_limit("rate_limit_write", after=valid_message))
# Credentials first: then the write limit and the realtime bounds count per caller.
WRITER = [requires("realtime:write"), WRITE_LIMIT]
SOCKET_AUTH = socket_requires("realtime:write")


class Published(BaseModel):
    id: int
    listeners: int


def as_json(message: Message) -> str:
    return json.dumps({"id": message.id, "text": message.text})


@router.post("/messages", status_code=202, responses=DENIED, dependencies=WRITER)
async def publish(message: MessageIn, broadcaster: BroadcasterDep) -> Published:
    published = broadcaster.publish(message.text)
    return Published(id=published.id, listeners=len(broadcaster.subscriptions))


async def sse_events(
    subscription: Subscription, limit: int | None, keepalive: float = KEEPALIVE_SECONDS
) -> AsyncIterator[str]:
    """SSE frames: a comment first (so proxies flush the headers), keepalive comments while
    idle, then one `message` event per broadcast, up to `limit` of them."""
    yield "retry: 3000\n: connected\n\n"
    sent = 0
    while limit is None or sent < limit:
        try:
            message = await asyncio.wait_for(subscription.get(), keepalive)
        except TimeoutError:
            yield ": keepalive\n\n"
            continue
        if message is None:
            return
        yield f"id: {message.id}\nevent: message\ndata: {as_json(message)}\n\n"
        sent += 1


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses=STREAMS_BOUNDED,
    dependencies=[Depends(stream_slot)],
)
async def events(
    broadcaster: BroadcasterDep,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> StreamingResponse:
    """Server-Sent Events: every broadcast message; the stream ends after `limit` of them."""

    async def stream() -> AsyncIterator[str]:
        async with broadcaster.subscribe() as subscription:
            async for frame in sse_events(subscription, limit):
                yield frame

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.websocket("/ws", dependencies=[Depends(check_origin), SOCKET_AUTH])
async def chat(
    websocket: WebSocket,
    broadcaster: BroadcasterDep,
    guard: GuardDep,
    use: SocketSlotDep,
) -> None:
    await accept(websocket)  # with the subprotocol a browser named, never its credential
    async with broadcaster.subscribe() as subscription:
        forward = asyncio.create_task(forward_messages(websocket, subscription))
        try:
            await receive_messages(websocket, broadcaster, guard, use)
        finally:
            forward.cancel()
            # Collect the forwarder's end (cancelled, or failed on a closed socket) quietly.
            await asyncio.gather(forward, return_exceptions=True)


async def receive_messages(
    websocket: WebSocket, broadcaster: Broadcaster, guard: RealtimeGuard, use: ClientUse
) -> None:
    """Publish each text frame; close the socket of a client breaking a bound (1003 binary,
    1009 too big, 1008 too many per second)."""
    settings = guard.settings
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            return
        text = received.get("text")
        if text is None:
            await websocket.close(code=1003, reason="text frames only")
            return
        if not guard.fits(text):
            reason = f"messages of at most {settings.realtime_max_message_bytes} bytes"
            await websocket.close(code=1009, reason=reason)
            return
        if not guard.may_send(use):
            reason = f"at most {settings.realtime_messages_per_second:g} messages per second"
            await websocket.close(code=1008, reason=reason)
            return
        broadcaster.publish(text)


async def forward_messages(websocket: WebSocket, subscription: Subscription) -> None:
    async for message in subscription:
        await websocket.send_text(as_json(message))
    await websocket.close(code=1001, reason="service stopping")
