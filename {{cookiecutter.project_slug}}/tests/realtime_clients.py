"""What the realtime tests share: the endpoints' paths, and clients of an app made with given
settings{% if cookiecutter.auth != "none" %}, signed in or anonymous{% endif %}."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from {{ cookiecutter.package_name }}.main import create_app
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.package_name }}.security.tokens import TokenAuthority
{%- endif %}
from {{ cookiecutter.package_name }}.settings import Settings
{%- if cookiecutter.auth == "api_key" %}

from .credentials import AUTH_SETTINGS, auth_headers
{%- elif cookiecutter.auth == "jwt" %}

from .credentials import AUTH_SETTINGS, auth_headers
{%- endif %}

WS = "/api/v1/realtime/ws"
MESSAGES = "/api/v1/realtime/messages"
EVENTS = "/api/v1/realtime/events"
{%- if cookiecutter.auth == "none" %}
AUTH_SETTINGS: dict[str, Any] = {}
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
