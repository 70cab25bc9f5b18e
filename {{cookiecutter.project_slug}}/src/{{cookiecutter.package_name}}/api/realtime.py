"""/api/v1/realtime: a WebSocket chat (echo and broadcast) and a Server-Sent Events stream.

A text sent on the WebSocket, or POSTed to /messages, reaches every WebSocket client (the
sender included) and every SSE listener as {"id": n, "text": "..."}.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from ..domain.broadcast import Broadcaster, Message, Subscription
from ..security.rate_limit import RATE_LIMITED
from . import API_PREFIX

MAX_TEXT = 4096
KEEPALIVE_SECONDS = 15.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    broadcaster = Broadcaster()
    yield {"broadcaster": broadcaster}
    broadcaster.close()  # ends open streams, so shutdown does not wait for them


async def get_broadcaster(connection: HTTPConnection) -> Broadcaster:
    broadcaster: Broadcaster = connection.state.broadcaster
    return broadcaster


BroadcasterDep = Annotated[Broadcaster, Depends(get_broadcaster)]
router = APIRouter(
    prefix=f"{API_PREFIX}/realtime", tags=["realtime"], lifespan=lifespan, responses=RATE_LIMITED
)


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class Published(BaseModel):
    id: int
    listeners: int


def as_json(message: Message) -> str:
    return json.dumps({"id": message.id, "text": message.text})


@router.post("/messages", status_code=202)
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


@router.get("/events", response_class=StreamingResponse)
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


@router.websocket("/ws")
async def chat(websocket: WebSocket, broadcaster: BroadcasterDep) -> None:
    await websocket.accept()
    async with broadcaster.subscribe() as subscription:
        forward = asyncio.create_task(forward_messages(websocket, subscription))
        try:
            await receive_messages(websocket, broadcaster)
        finally:
            forward.cancel()
            # Collect the forwarder's end (cancelled, or failed on a closed socket) quietly.
            await asyncio.gather(forward, return_exceptions=True)


async def receive_messages(websocket: WebSocket, broadcaster: Broadcaster) -> None:
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            return
        text = received.get("text")
        if text is None or len(text) > MAX_TEXT:
            reason = f"text frames of at most {MAX_TEXT} characters"
            await websocket.close(code=1003 if text is None else 1009, reason=reason)
            return
        broadcaster.publish(text)


async def forward_messages(websocket: WebSocket, subscription: Subscription) -> None:
    async for message in subscription:
        await websocket.send_text(as_json(message))
    await websocket.close(code=1001, reason="service stopping")
