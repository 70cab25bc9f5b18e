import asyncio

from fastapi import FastAPI
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.health import register_check
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings


async def healthy() -> None:
    return None


async def broken() -> None:
    raise ConnectionError("redis://user:secret@10.0.0.1 refused")


async def slow() -> None:
    await asyncio.sleep(5)


def test_live_answers_ok(client: TestClient) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_lists_every_check_when_all_are_up(app: FastAPI) -> None:
    register_check(app, "cache", healthy)
    with TestClient(app) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["cache"] == {"status": "up", "error": None, "state": None}


def test_ready_is_503_when_a_check_fails_and_hides_its_message(app: FastAPI) -> None:
    register_check(app, "cache", healthy)
    register_check(app, "redis", broken)
    with TestClient(app) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == {
        "status": "down",
        "error": "ConnectionError",
        "state": None,
    }
    assert body["checks"]["cache"]["status"] == "up"
    assert "secret" not in response.text


def test_ready_times_out_a_hanging_check() -> None:
    app = create_app(Settings(_env_file=None, readiness_timeout_seconds=0.05))
    register_check(app, "upstream", slow)
    with TestClient(app) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["upstream"] == {
        "status": "down",
        "error": "timed out after 0.05s",
        "state": None,
    }
