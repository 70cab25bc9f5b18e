import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field, ValidationError

from limits.errors import StorageError

from {{ cookiecutter.package_name }} import api
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.security.docs import docs_router
from {{ cookiecutter.package_name }}.security.rate_limit import (
    RATE_LIMITED,
    RateLimitedRoute,
    RateLimits,
    rate_limit,
)
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings

from .conftest import LogLines, production_settings

LIMITED = {
    "rate_limit_default": "3/minute",
    "rate_limit_write": "2/minute",
    "rate_limit_storage_uri": "memory://",
}


async def as_principal(request: Request, user: str = "") -> None:
    if user:
        request.state.principal = user  # what the auth dependency does


class Note(BaseModel):
    text: str = Field(min_length=1)


async def valid_note(note: Note) -> None:
    """The body, checked before the write limit counts the request."""


def build(**values: Any) -> FastAPI:
    app = create_app(Settings(_env_file=None, **{**LIMITED, **values}))
    router = APIRouter(route_class=RateLimitedRoute)  # as every router of the service

    @router.get("/items/{item_id}", responses=RATE_LIMITED)
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @router.get("/text")
    async def text() -> PlainTextResponse:
        return PlainTextResponse("a response the route builds itself")

    @router.post(
        "/write", dependencies=[Depends(rate_limit("rate_limit_write"))], responses=RATE_LIMITED
    )
    async def write() -> dict[str, str]:
        return {"status": "written"}

    @router.get(
        "/mine",
        dependencies=[Depends(as_principal), Depends(rate_limit("rate_limit_write"))],
    )
    async def mine() -> dict[str, str]:
        return {"status": "ok"}

    @router.post(
        "/notes", dependencies=[Depends(rate_limit("rate_limit_write", after=valid_note))]
    )
    async def add_note(note: Note) -> Note:
        return note

    @router.post("/notes/unchecked", dependencies=[Depends(rate_limit("rate_limit_write"))])
    async def add_unchecked_note(note: Note) -> Note:
        return note

    app.include_router(router)
    return app


@pytest.fixture
def limited() -> Iterator[TestClient]:
    with TestClient(build(), raise_server_exceptions=False) as client:
        yield client


def limits_of(client: TestClient) -> RateLimits:
    limits: RateLimits = client.app_state["rate_limits"]  # the lifespan's (main.py)
    return limits


def test_every_route_has_the_default_limit_with_its_headers(limited: TestClient) -> None:
    responses = [limited.get("/items/1") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert {r.headers["x-ratelimit-limit"] for r in responses} == {"3"}
    assert int(responses[0].headers["x-ratelimit-reset"]) > 0
    assert "retry-after" not in responses[0].headers


def test_a_response_the_route_builds_itself_carries_the_headers_too(
    limited: TestClient,
) -> None:
    assert [limited.get("/text").headers["x-ratelimit-remaining"] for _ in range(3)] == [
        "2",
        "1",
        "0",
    ]


def test_every_429_is_counted_under_its_route(limited: TestClient) -> None:
    def refused() -> float:
        return REGISTRY.get_sample_value("http_rate_limited_total", {"limit": "default"}) or 0.0

    def served(handler: str) -> float:
        labels = {"method": "GET", "handler": handler, "status": "4xx"}
        return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0

    before = refused(), served("/items/{item_id}"), served("none")
    statuses = [limited.get(f"/items/{number}").status_code for number in range(4)]
    assert statuses.count(429) == 1
    assert (refused(), served("/items/{item_id}"), served("none")) == (
        before[0] + 1,
        before[1] + 1,  # an operator sees which route is throttled
        before[2],
    )


def test_the_429_is_a_problem_with_retry_after(limited: TestClient) -> None:
    for _ in range(3):
        limited.get("/items/1")
    response = limited.get("/items/1", headers={"X-Request-ID": "abc"})
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["x-request-id"] == "abc"
    body = response.json()
    assert body["status"] == 429
    assert body["title"] == "Too Many Requests"
    assert body["request_id"] == "abc"
    assert "3 per 1 minute" in body["detail"]


def test_the_openapi_document_lists_the_429_where_it_can_happen(limited: TestClient) -> None:
    paths = limited.get("/openapi.json").json()["paths"]
    too_many = paths["/write"]["post"]["responses"]["429"]
    assert list(too_many["content"]) == ["application/problem+json"]
    assert set(too_many["headers"]) >= {
        "Retry-After",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    }
    api = {path: ops for path, ops in paths.items() if path.startswith("/api/")}
    assert all("429" in op["responses"] for ops in api.values() for op in ops.values())
    assert "429" not in paths["/health/live"]["get"]["responses"]


def unlimited_routers(routers: dict[str, APIRouter]) -> list[str]:
    return [name for name, router in routers.items() if router.route_class is not RateLimitedRoute]


def test_no_router_escapes_the_default_limit() -> None:
    """A router made without `route_class=RateLimitedRoute` would serve its routes unlimited:
    every router of the `api` package (where yours go) and the docs' have it."""
    routers = {"docs_router()": docs_router(Settings(_env_file=None))}
    for module in pkgutil.iter_modules(api.__path__, f"{api.__name__}."):
        values = vars(importlib.import_module(module.name)).items()
        routers |= {f"{module.name}.{n}": v for n, v in values if isinstance(v, APIRouter)}
    unlimited = unlimited_routers(routers)
    assert not unlimited, f"give {unlimited} route_class=RateLimitedRoute"
    assert unlimited_routers({"forgotten": APIRouter(prefix="/forgotten")}) == ["forgotten"]


def test_health_routes_are_exempt(limited: TestClient) -> None:
    responses = [limited.get("/health/live") for _ in range(10)]
    assert {r.status_code for r in responses} == {200}
    assert "x-ratelimit-limit" not in responses[-1].headers


def test_a_route_can_ask_for_a_stricter_limit_of_its_own(limited: TestClient) -> None:
    responses = [limited.post("/write") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [r.headers["x-ratelimit-limit"] for r in responses] == ["2", "2", "2"]
    assert responses[2].headers["content-type"] == "application/problem+json"
    assert "retry-after" in responses[2].headers
    # The default limit counted those requests too, in its own bucket.
    assert limited.get("/items/1").headers["x-ratelimit-remaining"] == "0"


def test_a_refused_body_is_not_counted_when_the_limit_checks_it_first() -> None:
    """FastAPI runs a route's dependencies before it validates the route's own body, so a plain
    limit counts a request it then refuses with a 422; `after=` validates the body first."""
    bodies = [{"text": ""}, {}, {"text": "a"}, {"text": "b"}, {"text": "c"}]
    with TestClient(build(rate_limit_default="100/minute")) as client:
        checked = [client.post("/notes", json=body).status_code for body in bodies]
    with TestClient(build(rate_limit_default="100/minute")) as client:
        unchecked = [client.post("/notes/unchecked", json=body).status_code for body in bodies]
    assert checked == [422, 422, 200, 200, 429]
    assert unchecked == [422, 422, 429, 429, 429]


def test_the_write_limit_lets_development_explore_and_is_strict_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).rate_limit_write == "100/minute"
    assert Settings(_env_file=None, **production_settings()).rate_limit_write == "10/minute"
    monkeypatch.setenv(f"{ENV_PREFIX}RATE_LIMIT_WRITE", "")  # empty, as in .env.example
    assert Settings(_env_file=None, **production_settings()).rate_limit_write == "10/minute"
    monkeypatch.setenv(f"{ENV_PREFIX}RATE_LIMIT_WRITE", "3/minute")
    assert Settings(_env_file=None).rate_limit_write == "3/minute"


def test_route_limits_count_per_principal_when_there_is_one() -> None:
    with TestClient(build(rate_limit_default="100/minute")) as client:
        assert [client.get("/mine?user=ann").status_code for _ in range(3)] == [200, 200, 429]
        assert client.get("/mine?user=bob").status_code == 200
        assert client.get("/mine").status_code == 200  # no principal: the address


def test_while_the_storage_is_down_each_process_counts_in_memory(
    limited: TestClient, log_lines: LogLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storage outage falls back to per-process counting: never to no limit at all."""
    limits = limits_of(limited)

    async def broken(*args: object, **kwargs: object) -> int:
        raise StorageError(ConnectionError("storage down"))

    monkeypatch.setattr(limits.storage, "incr", broken)
    responses = [limited.get("/items/1") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in responses] == ["2", "1", "0", "0"]
    assert limits.fallback_checks == 4
    errors = [line for line in log_lines() if "unreachable" in line["message"]]
    assert len(errors) == 1  # once per outage
    assert "ConnectionError" in errors[0]["message"]

    monkeypatch.undo()
    limits.retry_at = 0.0  # the retry pause is over: the storage's own counters again
    assert limited.get("/items/1").headers["x-ratelimit-remaining"] == "2"
    assert any("is back" in line["message"] for line in log_lines())


def test_failing_closed_answers_503_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(build(rate_limit_fail_open=False)) as client:
        limits = limits_of(client)
        incr = limits.storage.incr

        async def broken_for_writes(key: str, expiry: int, amount: int = 1) -> int:
            if "rate_limit_write" in key:
                raise StorageError(TimeoutError())
            return await incr(key, expiry, amount)

        monkeypatch.setattr(limits.storage, "incr", broken_for_writes)
        route = client.post("/write")  # the default limit passes, the route's fails
        default = client.get("/items/1")  # the storage is down now: no more tries for 1 s
        assert client.get("/health/live").status_code == 200
    for response in (route, default):
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"


def test_the_client_is_the_socket_peer_without_trusted_proxies(limited: TestClient) -> None:
    scope = {"type": "http", "client": ("10.1.2.3", 1234), "headers": []}
    assert limits_of(limited).client(Request(scope)) == "10.1.2.3"


def test_rate_limiting_can_be_turned_off() -> None:
    with TestClient(build(rate_limit_enabled=False)) as client:
        responses = [client.post("/write") for _ in range(5)]
    assert {r.status_code for r in responses} == {200}
    assert "x-ratelimit-limit" not in responses[-1].headers


def test_limits_are_checked_when_the_settings_are_read() -> None:
    with pytest.raises(ValidationError, match="rate_limit_write"):
        Settings(_env_file=None, rate_limit_write="ten a minute")


def test_a_route_limit_must_name_a_setting() -> None:
    with pytest.raises(ValueError, match="no such setting"):
        rate_limit("rate_limit_wirte")


def test_several_workers_with_memory_counters_are_warned_about(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = create_app(Settings(_env_file=None, workers=2, rate_limit_storage_uri="memory://"))
    with TestClient(app):
        pass
    assert "rate limits are per worker: 2 workers" in capsys.readouterr().out


def test_every_limited_answer_documents_the_rate_limit_headers_it_sends() -> None:
    app = build(rate_limit_default="10/minute")
    router = APIRouter(route_class=RateLimitedRoute)

    @router.get("/missing", responses={404: {"description": "Never found"}})
    async def missing() -> None:
        raise HTTPException(404, "Nothing here")

    app.include_router(router)

    with TestClient(app) as client:
        document = client.get("/openapi.json").json()
        answers = {
            ("/items/{item_id}", "200"): client.get("/items/1"),
            ("/items/{item_id}", "422"): client.get("/items/one"),  # counted, then refused
            ("/missing", "404"): client.get("/missing"),
        }
    for (path, status), response in answers.items():
        assert str(response.status_code) == status
        declared = document["paths"][path]["get"]["responses"][status]["headers"]
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            assert name in declared, (path, status, name)
            assert name.lower() in response.headers, (path, status, name)
    limited = document["paths"]["/items/{item_id}"]["get"]["responses"]["429"]["headers"]
    assert "Retry-After" in limited
    for status, answer in document["paths"]["/health/live"]["get"]["responses"].items():
        assert "X-RateLimit-Limit" not in answer.get("headers", {}), status  # never limited
