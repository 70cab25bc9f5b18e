"""The API's routes sit in the app's own route table, and behave as if included."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.api import API_PREFIX
from {{ cookiecutter.package_name }}.api import router as api
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello"}


async def name() -> str:
    return "world"


things = APIRouter(prefix=f"{API_PREFIX}/things", lifespan=lifespan)


@things.get("/{thing_id}")
async def get_thing(thing_id: int, request: Request, who: Annotated[str, Depends(name)]) -> str:
    return f"{request.state.greeting} {who} {thing_id}"


@things.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())


@pytest.fixture
def apps(monkeypatch: pytest.MonkeyPatch) -> list[FastAPI]:
    monkeypatch.setattr(api, "RESOURCES", [*api.RESOURCES, things])
    return [create_app(Settings(_env_file=None)) for _ in range(2)]


def test_api_routes_are_matched_first_from_the_apps_own_table(apps: list[FastAPI]) -> None:
    routes = apps[0].router.routes
    flat = [r.path for r in routes if isinstance(r, APIRoute)]
    assert API_PREFIX + "/things/{thing_id}" in flat
    assert isinstance(routes[0], APIRoute) and routes[0].path.startswith(API_PREFIX)
    with TestClient(apps[0]) as client:
        assert client.get(f"{API_PREFIX}/things/7").json() == "hello world 7"
        paths = client.get("/openapi.json").json()["paths"]
    assert list(paths).count(API_PREFIX + "/things/{thing_id}") == 1


def test_dependency_overrides_apply_per_app(apps: list[FastAPI]) -> None:
    apps[0].dependency_overrides[name] = lambda: "override"
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        assert first.get(f"{API_PREFIX}/things/1").json() == "hello override 1"
        assert second.get(f"{API_PREFIX}/things/1").json() == "hello world 1"


def test_websocket_routes_are_served_through_their_router(apps: list[FastAPI]) -> None:
    with TestClient(apps[0]) as client, client.websocket_connect(f"{API_PREFIX}/things/ws") as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "ping"


def test_a_router_with_its_own_body_limit_stays_nested(monkeypatch: pytest.MonkeyPatch) -> None:
    small = APIRouter(prefix=f"{API_PREFIX}/small")

    @small.post("/notes", max_body_size=16)
    async def note(request: Request) -> int:
        return len(await request.body())

    monkeypatch.setattr(api, "RESOURCES", [*api.RESOURCES, small])
    app = create_app(Settings(_env_file=None))
    assert all(getattr(r, "path", "") != f"{API_PREFIX}/small/notes" for r in app.router.routes)
    with TestClient(app) as client:
        assert client.post(f"{API_PREFIX}/small/notes", content=b"x" * 8).json() == 8
        assert client.post(f"{API_PREFIX}/small/notes", content=b"x" * 64).status_code == 413
        paths = client.get("/openapi.json").json()["paths"]
    assert f"{API_PREFIX}/small/notes" in paths
