"""The app is composed the FastAPI way: routers included, dependencies through Depends, so
app-level dependencies, dependency overrides and the OpenAPI document reach every route."""

from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }} import main
from {{ cookiecutter.package_name }}.api import API_PREFIX
from {{ cookiecutter.package_name }}.api.dependencies import SettingsDep, app_settings
from {{ cookiecutter.package_name }}.settings import Settings


def test_an_app_level_dependency_runs_on_every_route(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """As if `dependencies=[Depends(seen)]` were added to FastAPI(...) in main.py."""
    calls: list[str] = []

    async def seen(request: Request) -> None:
        calls.append(request.url.path)

    class AppWithDependency(FastAPI):
        def __init__(self, **options: Any) -> None:
            dependencies = [*options.pop("dependencies", []), Depends(seen)]
            super().__init__(dependencies=dependencies, **options)

    monkeypatch.setattr(main, "FastAPI", AppWithDependency)
    with TestClient(main.create_app(settings), raise_server_exceptions=False) as client:
        spec = client.get("/openapi.json").json()
        calls.clear()
        called = [
            (method, path.replace("{", "").replace("}", ""))  # {id} -> "id": a 422 will do
            for path, operations in spec["paths"].items()
            for method in operations
        ]
        for method, path in called:
            client.request(method, path, params={"limit": 0})  # an event stream answers 422
    assert sorted(calls) == sorted(path for _, path in called)
    assert len(called) >= 2  # the probes at least, and every API route


def test_every_route_documents_its_problems(client: TestClient) -> None:
    """500 everywhere; 429 on the API's routes, which the rate limit covers."""
    spec = client.get("/openapi.json").json()
    documented = 0
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            responses = operation["responses"]
            problem = responses["500"]["content"]["application/problem+json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/Problem"}
            assert ("429" in responses) == path.startswith(API_PREFIX), path
            documented += 1
    assert documented >= 2  # the probes at least


def test_a_dependency_is_replaced_through_dependency_overrides(app: FastAPI) -> None:
    """The settings a route sees come through Depends, so a test can swap them."""
    seen: list[str] = []

    async def probe(settings: SettingsDep) -> str:
        seen.append(settings.service_name)
        return settings.service_name

    app.add_api_route("/probe", probe)
    with TestClient(app) as client:
        assert client.get("/probe").json() == app.state.settings.service_name
        app.dependency_overrides[app_settings] = lambda: Settings(
            _env_file=None, service_name="overridden"
        )
        assert client.get("/probe").json() == "overridden"
    assert seen == [app.state.settings.service_name, "overridden"]
