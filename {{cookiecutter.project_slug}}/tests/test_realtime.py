{%- if cookiecutter.auth == "none" -%}
"""The realtime endpoints, a WebSocket chat and a Server-Sent Events stream, and their guards:
the handshake's Origin, and each client's bounds on connections, streams, message size and
message rate."""
{%- else -%}
"""The realtime endpoints, a WebSocket chat and a Server-Sent Events stream, and their guards:
the credentials publishing needs, the handshake's Origin, and each client's bounds on
connections, streams, message size and message rate."""
{%- endif %}

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from {{ cookiecutter.package_name }}.api.realtime import (
    closed_on_stop_signal,
    get_guard,
    sse_events,
)
from {{ cookiecutter.package_name }}.domain.broadcast import Broadcaster
from {{ cookiecutter.package_name }}.main import create_app
{%- if cookiecutter.auth == "api_key" %}
from {{ cookiecutter.package_name }}.security.api_keys import hash_api_key
{%- elif cookiecutter.auth == "jwt" %}
from {{ cookiecutter.package_name }}.security.tokens import TokenAuthority
{%- endif %}
from {{ cookiecutter.package_name }}.security.realtime import RealtimeGuard
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings

from .conftest import Server, start_server
{%- if cookiecutter.auth == "api_key" %}
from .credentials import AUTH_SETTINGS, TEST_API_KEY, auth_headers
{%- elif cookiecutter.auth == "jwt" %}
from .credentials import AUTH_SETTINGS, auth_headers
{%- endif %}

WS = "/api/v1/realtime/ws"
MESSAGES = "/api/v1/realtime/messages"
EVENTS = "/api/v1/realtime/events"
{%- if cookiecutter.auth == "none" %}
AUTH_SETTINGS: dict[str, Any] = {}
{%- endif %}
{%- if cookiecutter.auth == "api_key" %}
SECOND_KEY = "a-second-key-for-the-tests"
{%- endif %}


def app_with(**settings: Any) -> FastAPI:
    defaults = {"rate_limit_storage_uri": "memory://", **AUTH_SETTINGS}
    return create_app(Settings(_env_file=None, **(defaults | settings)))


@contextmanager
def serving(**settings: Any) -> Iterator[TestClient]:
    """A client of an app with these settings{% if cookiecutter.auth != "none" %}, signed in (allowed everything){% endif %}."""
    app = app_with(**settings)
    with TestClient(app, raise_server_exceptions=False) as client:
{%- if cookiecutter.auth != "none" %}
        client.headers.update(auth_headers(app.state.settings))
{%- endif %}
        yield client
{%- if cookiecutter.auth != "none" %}


@contextmanager
def anonymous(**settings: Any) -> Iterator[TestClient]:
    with TestClient(app_with(**settings), raise_server_exceptions=False) as client:
        yield client
{%- endif %}


def refusal(client: TestClient, url: str = WS, **kwargs: Any) -> int:
    """The close code of a handshake the service refuses (fails when it accepts)."""
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect(url, **kwargs):
            pass
    return closed.value.code


def closing_code(socket: Any) -> int:
    with pytest.raises(WebSocketDisconnect) as closed:
        socket.receive_text()
    return closed.value.code
{%- if cookiecutter.auth == "jwt" %}


def token(subject: str, scopes: list[str]) -> str:
    settings = Settings(_env_file=None, **AUTH_SETTINGS)
    authority = TokenAuthority(settings.jwt_secret.get_secret_value(), settings.service_name, 600)
    return authority.issue(subject, scopes)
{%- endif %}


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


# Every door: the handshake's Origin


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (None, True),  # not a browser
        ("https://app.example", True),  # one of CORS_ORIGINS
        ("http://testserver", True),  # the service's own pages
        ("https://evil.example", False),
        ("null", False),  # a sandboxed or local page
    ],
)
def test_a_browser_handshake_from_another_site_is_refused(
    origin: str | None, accepted: bool
) -> None:
    headers = {"Origin": origin} if origin else {}
    with serving(cors_origins=["https://app.example"]) as client:
        if accepted:
            with client.websocket_connect(WS, headers=headers) as socket:
                socket.send_text("hi")
                assert socket.receive_json()["text"] == "hi"
        else:
            assert refusal(client, headers=headers) == 1008


# Bounds per client: connections, message size and rate, event streams


def test_a_client_holds_at_most_its_websockets() -> None:
    with serving(realtime_max_connections_per_client=2) as client:
        with client.websocket_connect(WS), client.websocket_connect(WS):
            assert refusal(client) == 1008
        with client.websocket_connect(WS), client.websocket_connect(WS):
            pass  # closed sockets gave their places back


def test_the_service_holds_at_most_its_subscribers() -> None:
    with serving(realtime_max_subscribers=1, realtime_max_connections_per_client=5) as client:
        with client.websocket_connect(WS):
            assert refusal(client) == 1008


def test_a_message_over_the_size_bound_closes_the_socket_with_1009() -> None:
    with serving(realtime_max_message_bytes=8) as client:
        with client.websocket_connect(WS) as socket:
            socket.send_text("12345678")
            assert socket.receive_json()["text"] == "12345678"
            socket.send_text("\u00e9" * 5)  # 5 characters, 10 bytes in UTF-8
            assert closing_code(socket) == 1009
        too_large = client.post(MESSAGES, json={"text": "\u00e9" * 5})
    assert too_large.status_code == 422
    assert too_large.headers["content-type"] == "application/problem+json"
    assert too_large.json()["errors"][0]["loc"] == ["body", "text"]


def test_a_flood_of_messages_closes_the_offender_not_the_service() -> None:
    with serving(realtime_messages_per_second=1, rate_limit_write="100/minute") as client:
        with client.websocket_connect(WS) as flooder:
            flooder.send_text("one")
            assert flooder.receive_json()["text"] == "one"
            flooder.send_text("two")
            assert closing_code(flooder) == 1008
        assert client.post(MESSAGES, json={"text": "still up"}).status_code == 202
{%- if cookiecutter.auth == "none" %}


def test_each_client_address_has_its_own_bounds() -> None:
    """The address as the rate limiter computes it: X-Forwarded-For from a trusted proxy."""
    app = app_with(trusted_proxies=["10.0.0.0/8"], realtime_max_connections_per_client=1)
    with TestClient(app, client=("10.0.0.2", 50000)) as proxy:
        first, second = {"X-Forwarded-For": "192.0.2.1"}, {"X-Forwarded-For": "192.0.2.2"}
        with proxy.websocket_connect(WS, headers=first):
            with proxy.websocket_connect(WS, headers=second):
                assert refusal(proxy, headers=first) == 1008


def test_behind_proxies_that_write_forwarded_only_that_header_names_the_client() -> None:
    app = app_with(
        trusted_proxies=["10.0.0.0/8"],
        forwarded_header="forwarded",
        realtime_max_connections_per_client=1,
    )
    with TestClient(app, client=("10.0.0.2", 50000)) as proxy:
        # Each client forges its own X-Forwarded-For; the proxy's Forwarded names the same one.
        first = {"Forwarded": "for=192.0.2.1", "X-Forwarded-For": "198.51.100.1"}
        forged = {"Forwarded": "for=192.0.2.1", "X-Forwarded-For": "198.51.100.2"}
        with proxy.websocket_connect(WS, headers=first):
            assert refusal(proxy, headers=forged) == 1008
{%- elif cookiecutter.auth == "api_key" %}


def test_each_caller_has_its_own_bounds_whatever_its_address() -> None:
    digests = {**AUTH_SETTINGS["api_key_digests"], "second": hash_api_key(SECOND_KEY)}
    with serving(api_key_digests=digests, realtime_max_connections_per_client=1) as client:
        with client.websocket_connect(WS):
            with client.websocket_connect(WS, headers={"X-API-Key": SECOND_KEY}):
                assert refusal(client) == 1008
{%- else %}


def test_each_caller_has_its_own_bounds_whatever_its_address() -> None:
    with serving(realtime_max_connections_per_client=1) as client:
        other = token("someone-else", ["realtime:write"])
        with client.websocket_connect(WS):
            with client.websocket_connect(WS, headers={"Authorization": f"Bearer {other}"}):
                assert refusal(client) == 1008
{%- endif %}


@pytest.mark.parametrize(
    ("bounds", "status"),
    [
        ({"realtime_max_streams_per_client": 1}, 429),  # this client's
        ({"realtime_max_subscribers": 1}, 503),  # everybody's
    ],
)
def test_an_event_stream_over_a_bound_is_refused(bounds: dict[str, Any], status: int) -> None:
    guard = RealtimeGuard(Settings(_env_file=None, **bounds))
    guard.open("testclient", "stream")  # the stream the test client already holds
    app = app_with()
    app.dependency_overrides[get_guard] = lambda: guard
    with TestClient(app) as client:
        refused = client.get(EVENTS)
    assert refused.status_code == status
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "1"


def test_reconnecting_does_not_buy_a_fresh_message_budget() -> None:
    guard = RealtimeGuard(Settings(_env_file=None, realtime_messages_per_second=1))
    use = guard.open("client", "socket")
    assert guard.may_send(use)
    assert not guard.may_send(use)
    guard.close("client", "socket")
    assert not guard.may_send(guard.open("client", "socket"))  # the same, spent budget
    guard.close("client", "socket")


def test_a_client_with_nothing_open_is_forgotten_once_its_budget_refills() -> None:
    guard = RealtimeGuard(Settings(_env_file=None, realtime_messages_per_second=1000))
    guard.open("reader", "stream")
    guard.close("reader", "stream")  # a full budget: forgotten at once
    assert guard.clients == {}
    use = guard.open("talker", "socket")
    guard.may_send(use)
    guard.close("talker", "socket")
    assert list(guard.clients) == ["talker"]  # spent: kept
    time.sleep(0.01)  # refilled (1000 per second)
    guard.sweep(time.monotonic())
    assert guard.clients == {}


def stream_status(url: str) -> int:
    with httpx2.stream("GET", url, timeout=10) as response:
        return response.status_code


def test_the_real_server_bounds_the_event_streams_of_a_client(server: Server) -> None:
    url = f"{server.url}{EVENTS}"
    with ExitStack() as streams:
        for _ in range(5):  # REALTIME_MAX_STREAMS_PER_CLIENT's default
            opened = streams.enter_context(httpx2.stream("GET", url, timeout=10))
            assert opened.status_code == 200
        refused = httpx2.get(url, timeout=10)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
    # The closed streams give their places back once the server has seen them go.
    deadline = time.monotonic() + 10
    while stream_status(url) != 200:
        assert time.monotonic() < deadline, "the closed streams kept their places"
        time.sleep(0.05)


def test_posting_counts_against_the_write_limit() -> None:
    with serving(rate_limit_write="1/minute") as client:
        assert client.post(MESSAGES, json={"text": "one"}).status_code == 202
        refused = client.post(MESSAGES, json={"text": "two"})
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
{%- if cookiecutter.auth == "api_key" %}


# Credentials: publishing (POST, or the WebSocket) needs an API key, like every write


def test_an_anonymous_post_is_a_401_problem() -> None:
    with anonymous() as client:
        response = client.post(MESSAGES, json={"text": "hi"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "APIKey"


@pytest.mark.parametrize(
    ("url", "offered"),
    [
        (WS, None),
        (WS, ["api-key", "wrong-key"]),
        (WS, [TEST_API_KEY]),  # the key without its protocol name
        (f"{WS}?api_key={TEST_API_KEY}", None),  # URLs are logged: never read from there
    ],
)
def test_a_handshake_without_a_valid_key_is_refused(url: str, offered: list[str] | None) -> None:
    with anonymous() as client:
        assert refusal(client, url, subprotocols=offered) == 1008


def test_a_browser_offers_its_key_as_a_subprotocol() -> None:
    with anonymous() as client:
        with client.websocket_connect(WS, subprotocols=["api-key", TEST_API_KEY]) as socket:
            assert socket.accepted_subprotocol == "api-key"  # the name, never the key
            socket.send_text("from a page")
            assert socket.receive_json()["text"] == "from a page"
{%- elif cookiecutter.auth == "jwt" %}


# Credentials: publishing (POST, or the WebSocket) needs a token with realtime:write


def test_an_anonymous_post_is_a_401_problem() -> None:
    with anonymous() as client:
        response = client.post(MESSAGES, json={"text": "hi"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


def test_publishing_needs_the_realtime_write_scope() -> None:
    reader = {"Authorization": f"Bearer {token('reader', ['articles:write'])}"}
    with anonymous() as client:
        response = client.post(MESSAGES, json={"text": "hi"}, headers=reader)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert refusal(client, headers=reader) == 1008


@pytest.mark.parametrize(
    ("url", "offered"),
    [
        (WS, None),
        (WS, ["bearer", "not.a.token"]),
        (WS, ["bearer"]),
        (f"{WS}?access_token={token('alice', ['realtime:write'])}", None),  # URLs are logged
    ],
)
def test_a_handshake_without_a_valid_token_is_refused(url: str, offered: list[str] | None) -> None:
    with anonymous() as client:
        assert refusal(client, url, subprotocols=offered) == 1008


def test_a_browser_offers_its_token_as_a_subprotocol() -> None:
    offered = ["bearer", token("alice", ["realtime:write"])]
    with anonymous() as client:
        with client.websocket_connect(WS, subprotocols=offered) as socket:
            assert socket.accepted_subprotocol == "bearer"  # the name, never the token
            socket.send_text("from a page")
            assert socket.receive_json()["text"] == "from a page"
{%- endif %}


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
