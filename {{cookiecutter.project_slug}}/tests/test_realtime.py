"""The realtime endpoints at work: the hub's fan-out, the Server-Sent Events stream, the WebSocket
chat, their end on SIGTERM, and the message's documented size. Their guards (the handshake's
Origin, each client's bounds{% if cookiecutter.auth != "none" %}, the credentials{% endif %}): test_realtime_guards.py."""

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

import httpx2
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from {{ cookiecutter.package_name }}.api.realtime import closed_on_stop_signal, sse_events
from {{ cookiecutter.package_name }}.domain.broadcast import Broadcaster
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX

from .conftest import Server, start_server
from .realtime_clients import EVENTS, MESSAGES, WS, serving


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


@pytest.mark.anyio
async def test_a_subscription_opened_after_the_hub_closed_ends_at_once() -> None:
    hub = Broadcaster()
    hub.close()
    async with hub.subscribe() as late:
        assert await late.get() is None


@pytest.mark.anyio
async def test_a_stop_signal_closes_the_hub_then_reaches_the_servers_handler() -> None:
    """The server hears of the stop once the hub's subscribers are gone: told at once, uvicorn
    would close the sockets still open with 1012 before they sent their 1001."""
    seen: list[int] = []

    def servers_handler(number: int, frame: FrameType | None) -> None:
        seen.append(number)

    before = signal.signal(signal.SIGTERM, servers_handler)
    try:
        hub = Broadcaster()
        with closed_on_stop_signal(hub):
            async with hub.subscribe() as subscription:
                signal.raise_signal(signal.SIGTERM)
                assert await asyncio.wait_for(subscription.get(), 5) is None
                await asyncio.sleep(0.1)
                assert seen == []  # a subscriber is still there
            for _ in range(100):
                await asyncio.sleep(0.01)
                if seen:
                    break
        assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is servers_handler  # given back at the end
    finally:
        signal.signal(signal.SIGTERM, before)


def read_to_the_end(stream: Iterator[str]) -> list[str]:
    """Every line left; raises if the response is cut rather than ended."""
    return list(stream)


def close_code(socket: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            socket.recv(timeout=30)
    return closed.value.rcvd.code if closed.value.rcvd else None


def test_sigterm_ends_open_streams_and_sockets_and_the_server_exits_at_once(
    tmp_path: Path,
) -> None:
    settings = {
        f"{ENV_PREFIX}SHUTDOWN_TIMEOUT_SECONDS": "20",  # the streams must not wait for it
{%- if cookiecutter.database != "none" %}
        f"{ENV_PREFIX}DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'stop.db'}",
{%- endif %}
{%- if cookiecutter.messaging == "rabbitmq" %}
        f"{ENV_PREFIX}BROKER_URL": "amqp://guest:guest@127.0.0.1:1/",  # nothing listens there
{%- endif %}
    }
    server = start_server(settings)
    ws = server.url.replace("http://", "ws://") + WS
    with ExitStack() as stack, ThreadPoolExecutor() as pool:
        stack.callback(server.process.kill)  # if it is still running, whatever failed
        streams = []
        for _ in range(3):
            url = f"{server.url}{EVENTS}"
            response = stack.enter_context(httpx2.stream("GET", url, timeout=60))
            lines = response.iter_lines()
            assert next(lines) == "retry: 3000"
            streams.append(pool.submit(read_to_the_end, lines))
        sockets = [
            stack.enter_context(connect(ws, additional_headers=server.headers)) for _ in range(3)
        ]
        codes = [pool.submit(close_code, socket) for socket in sockets]
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        assert time.monotonic() - started < 5  # not held until the clients leave
        assert [stream.result(timeout=10)[-1] for stream in streams] == ["", "", ""]
        assert [code.result(timeout=10) for code in codes] == [1001, 1001, 1001]


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
        assert next(lines) == ": connected"  # read anonymously, like every read
        text = {"text": "over the wire"}
        assert httpx2.post(f"{url}/messages", json=text, headers=server.headers).status_code == 202
        event = [line for line in lines if line]
    assert event[1] == "event: message"
    assert json.loads(event[2].removeprefix("data: "))["text"] == "over the wire"


def test_a_message_longer_than_its_documented_max_length_is_a_422() -> None:
    with serving(realtime_max_message_bytes=40) as client:
        document = client.get("/openapi.json").json()
        text = document["components"]["schemas"]["MessageIn"]["properties"]["text"]
        assert text["maxLength"] == 40
        assert client.post(MESSAGES, json={"text": "a" * 40}).status_code == 202
        refused = client.post(MESSAGES, json={"text": "a" * 41})
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["loc"] == ["body", "text"]
        assert "422" in document["paths"][MESSAGES]["post"]["responses"]
        # Bytes are what is bounded: fewer characters than maxLength may still be too many.
        assert client.post(MESSAGES, json={"text": "\u00f1" * 21}).status_code == 422
