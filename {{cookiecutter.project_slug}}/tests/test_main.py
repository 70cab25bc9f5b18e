import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from {{ cookiecutter.package_name }} import __main__, __version__
from {{ cookiecutter.package_name }}.main import app, create_app
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import LogLines


def test_the_module_level_app_is_built_from_the_settings() -> None:
    assert app.title == "{{ cookiecutter.project_slug }}"
    assert app.version == __version__


def test_the_factory_takes_explicit_settings() -> None:
    built = create_app(Settings(_env_file=None, service_name="other-name"))
    assert built.title == "other-name"
    assert built.state.settings.service_name == "other-name"


def test_the_lifespan_logs_startup_and_shutdown(app: FastAPI, log_lines: LogLines) -> None:
    with TestClient(app) as client:
        assert client.get("/health/live").status_code == 200
    messages = [line["message"] for line in log_lines()]
    assert messages[0] == "starting"
    assert messages[-1] == "stopped"


def test_the_openapi_document_lists_the_health_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "{{ cookiecutter.project_slug }}"
    assert {"/health/live", "/health/ready"} <= set(schema["paths"])


@pytest.fixture(autouse=True)
def any_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn.run is a stand-in here, and the ports named may be anyone's: the check that a
    port is free is tested in test_ports.py."""
    monkeypatch.setattr(__main__, "refuse_busy_port", lambda *args: None)


def test_python_dash_m_starts_uvicorn_with_production_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # workers=2 below
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: calls.append((a, kw)))
    monkeypatch.setattr(
        __main__,
        "get_settings",
        lambda: Settings(_env_file=None, port=9100, workers=2, trusted_proxies=["10.0.0.5"]),
    )
    __main__.main([])
    [(args, kwargs)] = calls
    assert args == ("{{ cookiecutter.package_name }}.main:app",)
    assert kwargs["port"] == 9100
    assert kwargs["workers"] == 2
    assert kwargs["server_header"] is False
    assert kwargs["proxy_headers"] is True
    assert kwargs["forwarded_allow_ips"] == ["10.0.0.5/32"]
    assert kwargs["log_config"] is None
    assert kwargs["access_log"] is False


def test_reload_is_one_process_restarted_on_code_changes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`make run`: uvicorn's reloader, started after our logging is set up."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # workers=3 below
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setattr(__main__, "get_settings", lambda: Settings(_env_file=None, workers=3))
    __main__.main(["--reload"])
    assert calls[0]["reload"] is True and calls[0]["workers"] == 1
    __main__.main([])
    assert calls[1]["reload"] is False and calls[1]["workers"] == 3


def test_uvicorn_believes_x_forwarded_for_from_the_trusted_proxies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvicorn itself, given the list main() passes (networks, `10.0.0.5/32`), rewrites the
    client of a request from a trusted proxy, as security/client.py does: uvicorn 0.31+."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: calls.append(kw))
    trusted = ["10.0.0.5", "10.1.0.0/16"]
    monkeypatch.setattr(
        __main__, "get_settings", lambda: Settings(_env_file=None, trusted_proxies=trusted)
    )
    __main__.main([])
    clients: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        clients.append(scope["client"][0])

    middleware = ProxyHeadersMiddleware(app, trusted_hosts=calls[0]["forwarded_allow_ips"])
    for proxy in ("10.0.0.5", "10.1.200.3", "10.2.0.1"):
        scope: Any = {
            "type": "http",
            "scheme": "http",
            "client": (proxy, 4711),
            "headers": [(b"x-forwarded-for", b"198.51.100.7")],
        }
        asyncio.run(middleware(scope, None, None))  # type: ignore[arg-type]
    assert clients == ["198.51.100.7", "198.51.100.7", "10.2.0.1"]  # the last is not trusted


def test_the_lifespan_freezes_what_start_up_made(app: FastAPI) -> None:
    """Objects made at start-up live as long as the app: the collector need not scan them."""
    gc.unfreeze()
    try:
        with TestClient(app) as client:
            assert gc.get_freeze_count() > 0
            assert client.get("/health/live").status_code == 200
    finally:
        gc.unfreeze()


def test_without_trusted_proxies_forwarded_headers_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setattr(__main__, "get_settings", lambda: Settings(_env_file=None))
    __main__.main([])
    assert calls[0]["proxy_headers"] is False
    assert calls[0]["forwarded_allow_ips"] is None
