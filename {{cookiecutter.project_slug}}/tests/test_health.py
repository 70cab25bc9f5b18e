import asyncio

from fastapi import FastAPI
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.health import NotReady, register_check
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings


async def healthy() -> None:
    return None


async def broken() -> None:
    raise ConnectionError("redis://user:secret@10.0.0.1 refused")


async def behind() -> None:
    raise NotReady("the cache is warming up; wait for it")


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


def test_ready_runs_the_checks_at_most_once_per_interval() -> None:
    runs: list[float] = []

    async def counted() -> None:
        runs.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.05)  # concurrent probes arrive while it runs

    app = create_app(Settings(_env_file=None, readiness_cache_seconds=60))
    register_check(app, "counted", counted)

    async def probe_many() -> list[str]:
        checks = app.state.health_checks
        answers = await asyncio.gather(*(checks.readiness() for _ in range(20)))
        return [answer.status for answer in answers]

    with TestClient(app) as client:
        statuses = [client.get("/health/ready").status_code for _ in range(10)]
        assert client.portal is not None
        assert client.portal.call(probe_many) == ["ok"] * 20
    assert statuses == [200] * 10
    assert len(runs) == 1


def test_ready_runs_the_checks_every_time_without_a_cache() -> None:
    runs: list[int] = []

    async def counted() -> None:
        runs.append(1)

    app = create_app(Settings(_env_file=None, readiness_cache_seconds=0))
    register_check(app, "counted", counted)
    with TestClient(app) as client:
        for _ in range(3):
            client.get("/health/ready")
    assert len(runs) == 3


def test_ready_shows_the_message_of_a_check_that_says_what_fixes_it(app: FastAPI) -> None:
    register_check(app, "cache", behind)
    with TestClient(app) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["error"] == "the cache is warming up; wait for it"
