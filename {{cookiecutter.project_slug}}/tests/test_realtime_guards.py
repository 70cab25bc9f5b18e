"""The realtime endpoints' guards: the handshake's Origin, and each client's bounds on
connections, streams, message size and message rate{% if cookiecutter.auth != "none" %}; the credentials publishing needs{% endif %}."""

import time
from contextlib import ExitStack
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.api.realtime import get_guard
{%- if cookiecutter.auth == "api_key" %}
from {{ cookiecutter.package_name }}.security.api_keys import hash_api_key
{%- endif %}
from {{ cookiecutter.package_name }}.security.realtime import RealtimeGuard
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import Server
{%- if cookiecutter.auth == "api_key" %}
from .credentials import AUTH_SETTINGS, TEST_API_KEY
{%- endif %}
from .realtime_clients import (
    EVENTS,
    MESSAGES,
    WS,
{%- if cookiecutter.auth != "none" %}
    anonymous,
{%- endif %}
    app_with,
    closing_code,
    refusal,
    serving,
{%- if cookiecutter.auth == "jwt" %}
    token,
{%- endif %}
)
{%- if cookiecutter.auth == "api_key" %}

SECOND_KEY = "a-second-key-for-the-tests"
{%- endif %}


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
