"""The realtime endpoints: a WebSocket chat and a Server-Sent Events stream."""

import json

import httpx2
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from {{ cookiecutter.package_name }}.api.realtime import sse_events
from {{ cookiecutter.package_name }}.domain.broadcast import Broadcaster

from .conftest import Server

WS = "/api/v1/realtime/ws"


@pytest.mark.anyio
async def test_every_subscriber_gets_each_message_in_order() -> None:
    hub = Broadcaster()
    async with hub.subscribe() as first, hub.subscribe() as second:
        hub.publish("a")
        hub.publish("b")
        assert [(await first.get()), (await first.get())] == [
            (await second.get()),
            (await second.get()),
        ]
    assert hub.subscriptions == set()


@pytest.mark.anyio
async def test_a_slow_subscriber_loses_its_oldest_messages_not_the_newest() -> None:
    hub = Broadcaster(queue_size=2)
    async with hub.subscribe() as slow:
        for text in ("1", "2", "3"):
            hub.publish(text)
        received = [await slow.get(), await slow.get()]
        assert [message.text for message in received if message] == ["2", "3"]


@pytest.mark.anyio
async def test_sse_frames_connected_keepalive_and_messages_up_to_the_limit() -> None:
    hub = Broadcaster()
    async with hub.subscribe() as subscription:
        frames = sse_events(subscription, limit=1, keepalive=0.01)
        assert await anext(frames) == "retry: 3000\n: connected\n\n"
        assert await anext(frames) == ": keepalive\n\n"
        hub.publish('say "hi"\nthere')
        frame = await anext(frames)
        assert (
            frame == 'id: 1\nevent: message\ndata: {"id": 1, "text": "say \\"hi\\"\\nthere"}\n\n'
        )
        with pytest.raises(StopAsyncIteration):
            await anext(frames)


@pytest.mark.anyio
async def test_sse_ends_when_the_hub_closes() -> None:
    hub = Broadcaster()
    async with hub.subscribe() as subscription:
        frames = sse_events(subscription, limit=None)
        await anext(frames)
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await anext(frames)


def test_a_websocket_message_is_echoed_and_broadcast(client: TestClient) -> None:
    with client.websocket_connect(WS) as alice, client.websocket_connect(WS) as bob:
        client.post("/api/v1/realtime/messages", json={"text": "sync"})
        assert alice.receive_json()["text"] == "sync"
        assert bob.receive_json()["text"] == "sync"
        alice.send_text("hello")
        assert alice.receive_json() == {"id": 2, "text": "hello"}
        assert bob.receive_json() == {"id": 2, "text": "hello"}


def test_a_posted_message_reports_its_listeners(client: TestClient) -> None:
    response = client.post("/api/v1/realtime/messages", json={"text": "nobody here"})
    assert response.status_code == 202
    assert response.json() == {"id": 1, "listeners": 0}
    assert client.post("/api/v1/realtime/messages", json={"text": ""}).status_code == 422


@pytest.mark.parametrize(("send", "code"), [("text", 1009), ("bytes", 1003)])
def test_oversized_or_binary_frames_close_the_socket(
    client: TestClient, send: str, code: int
) -> None:
    with client.websocket_connect(WS) as socket:
        if send == "text":
            socket.send_text("x" * 4097)
        else:
            socket.send_bytes(b"\x00")
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
    assert closed.value.code == code


def test_the_real_server_streams_a_posted_message_as_an_event(server: Server) -> None:
    url = f"{server.url}/api/v1/realtime"
    with httpx2.stream("GET", f"{url}/events", params={"limit": 1}, timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 3000"
        assert next(lines) == ": connected"
        httpx2.post(f"{url}/messages", json={"text": "over the wire"})
        event = [line for line in lines if line]
    assert event[1] == "event: message"
    assert json.loads(event[2].removeprefix("data: "))["text"] == "over the wire"
