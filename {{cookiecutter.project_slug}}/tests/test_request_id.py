import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.observability.request_id import (
    RequestIdMiddleware,
    request_id_var,
)


def test_a_request_without_id_gets_a_fresh_one(client: TestClient) -> None:
    first = client.get("/health/live").headers["x-request-id"]
    second = client.get("/health/live").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_a_well_formed_incoming_id_is_kept(client: TestClient) -> None:
    response = client.get("/health/live", headers={"X-Request-ID": "edge-7f3a:42"})
    assert response.headers["x-request-id"] == "edge-7f3a:42"


@pytest.mark.parametrize("bad", ["a" * 129, "<script>", "two words", ""])
def test_a_malformed_incoming_id_is_replaced(client: TestClient, bad: str) -> None:
    response = client.get("/health/live", headers={"X-Request-ID": bad})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_error_responses_carry_the_id_too(client: TestClient) -> None:
    response = client.get("/missing", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


@pytest.mark.anyio
async def test_the_id_is_current_during_the_request_only() -> None:
    """Called in this task, as a server calls it: the context variable is reset at the end."""
    seen: list[str | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(request_id_var.get())

    async def nothing(message: Any = None) -> Any:
        return None

    scope = {"type": "http", "headers": [(b"x-request-id", b"abc-1")]}
    await RequestIdMiddleware(app)(scope, nothing, nothing)
    assert seen == ["abc-1"]
    assert request_id_var.get() is None
