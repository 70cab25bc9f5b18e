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
