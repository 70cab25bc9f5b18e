"""Fixtures: settings isolated from .env, the app with its lifespan running, a real server."""

import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.observability.logging import JsonFormatter
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings
{%- if cookiecutter.auth != "none" %}

from .credentials import AUTH_SETTINGS, PRODUCTION_SETTINGS, SERVER_ENV, auth_headers
{%- endif %}

from .upstream import FakeUpstream, serving

LogLines = Callable[[], list[dict[str, Any]]]
{%- if cookiecutter.auth == "none" %}
PRODUCTION_SETTINGS: dict[str, Any] = {}
{%- endif %}
METRICS_TOKEN = "metrics-token-of-the-tests-0123456789"


def production_settings(**overrides: Any) -> dict[str, Any]:
    """Values for Settings in production: what it requires on top of the defaults, and yours."""
    required = {**PRODUCTION_SETTINGS, "metrics_token": METRICS_TOKEN}
    return {**required, "environment": "production", **overrides}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings() -> Settings:
    # Counters in memory: the tests need no Redis (the template tests run a real one).
{%- if cookiecutter.auth == "none" %}
    return Settings(_env_file=None, rate_limit_storage_uri="memory://")
{%- else %}
    return Settings(_env_file=None, rate_limit_storage_uri="memory://", **AUTH_SETTINGS)
{%- endif %}


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
{%- if cookiecutter.auth != "none" %}
        client.headers.update(auth_headers(app.state.settings))  # signed in, allowed everything
{%- endif %}
        yield client


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    """A fake upstream serving real HTTP on a free 127.0.0.1 port (tests/upstream.py)."""
    with serving() as upstream:
        yield upstream


@pytest.fixture
def log_lines(app: FastAPI) -> Iterator[LogLines]:
    """The JSON log lines written while the test runs, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """`python -m {{ cookiecutter.package_name }}` serving real HTTP on 127.0.0.1."""

    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # sent to protected routes

    def read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def listening(self) -> bool:
        """Whether this server (not another process that took the port) says it listens."""
        return any(f"running on {self.url}" in line for line in list(self.lines))

    def wait_until_live(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited:\n" + "".join(self.lines))
            try:
                live = httpx2.get(f"{self.url}/health/live").status_code == 200
            except httpx2.TransportError:
                live = False
            if live and self.listening():
                return
            time.sleep(0.1)
        raise RuntimeError("server did not answer /health/live:\n" + "".join(self.lines))

    def entries(self, until: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The JSON log entries so far, once one matches `until` (the output lags a little)."""
        deadline = time.monotonic() + 10
        while True:
            entries = [json.loads(line) for line in list(self.lines)]
            if any(until(entry) for entry in entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=20)


def start_server(tries: int = 3) -> Server:
    """The server on a free port; another port if that one was taken meanwhile."""
    for _ in range(tries - 1):
        try:
            return start_server_once()
        except RuntimeError as error:
            if "address already in use" not in str(error).lower():
                raise
    return start_server_once()


def start_server_once() -> Server:
    port = free_port()
    env = {**os.environ, f"{ENV_PREFIX}HOST": "127.0.0.1", f"{ENV_PREFIX}PORT": str(port)}
    env[f"{ENV_PREFIX}LOG_FORMAT"] = "json"  # the tests read its lines as data
{%- if cookiecutter.auth != "none" %}
    env.update(SERVER_ENV)
{%- endif %}
    process = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(process, f"http://127.0.0.1:{port}")
{%- if cookiecutter.auth != "none" %}
    server.headers.update(auth_headers(Settings(**AUTH_SETTINGS)))  # read like the server's
{%- endif %}
    threading.Thread(target=server.read_output, daemon=True).start()
    try:
        server.wait_until_live()
    except RuntimeError:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    server = start_server()
    yield server
    if server.process.poll() is None:
        server.stop()
