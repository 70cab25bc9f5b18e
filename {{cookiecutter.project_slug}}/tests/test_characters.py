"""/api/v1/characters against a fake characters API on 127.0.0.1."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings

from .upstream import FakeUpstream, Reply

URL = "/api/v1/characters"


def character(path: str) -> dict[str, Any]:
    """What the real API answers for /character/{id}, extra fields included."""
    character_id = int(path.rsplit("/", 1)[1])
    return {
        "id": character_id,
        "name": f"Morty {character_id}",
        "status": "Alive",
        "species": "Human",
        "gender": "Male",
        "image": f"https://example.com/{character_id}.jpeg",
        "episode": ["https://example.com/episode/1"],
    }


def serving_characters(upstream: FakeUpstream, **overrides: Any) -> TestClient:
    upstream.default = Reply(body=character)
    settings = Settings(
        _env_file=None,
        **{
            "characters_api_url": upstream.url,
            "upstream_attempt_timeout_seconds": 0.3,
            "upstream_deadline_seconds": 1.0,
            "upstream_backoff_seconds": 0.01,
            "upstream_breaker_threshold": 2,
            "characters_cache_ttl_seconds": 0,  # every call goes out, but in the cache's tests
            **overrides,
        },
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def client(upstream: FakeUpstream) -> Iterator[TestClient]:
    with serving_characters(upstream) as client:
        yield client


def test_one_character_is_fetched_and_trimmed(client: TestClient, upstream: FakeUpstream) -> None:
    response = client.get(f"{URL}/2")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Morty 2"
    assert "episode" not in body
    assert upstream.hits == ["GET /character/2"]


def test_many_characters_come_in_the_order_asked_each_fetched_once(
    client: TestClient, upstream: FakeUpstream
) -> None:
    response = client.get(URL, params={"ids": "3,1,3,2"})
    assert response.status_code == 200
    assert [c["id"] for c in response.json()] == [3, 1, 3, 2]
    assert sorted(upstream.hits) == ["GET /character/1", "GET /character/2", "GET /character/3"]


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (",".join(map(str, range(1, 22))), "Value should have at most 20 items"),
        ("1,x", "Input should be a valid integer"),
        ("1,0", "Input should be greater than or equal to 1"),
    ],
)
def test_bad_ids_are_a_precise_422(client: TestClient, ids: str, message: str) -> None:
    response = client.get(URL, params={"ids": ids})
    assert response.status_code == 422
    assert response.json()["errors"][0]["msg"].startswith(message)


def test_the_upstream_404_is_a_404(client: TestClient, upstream: FakeUpstream) -> None:
    upstream.default = Reply(404, body={"error": "Character not found"})
    response = client.get(f"{URL}/9")
    assert response.status_code == 404
    assert response.json()["detail"] == "Character 9 does not exist"
    assert client.get(URL, params={"ids": "9,8"}).json()["detail"] == "No character with id 9, 8"


def test_an_unavailable_upstream_is_a_503_with_retry_after(
    client: TestClient, upstream: FakeUpstream
) -> None:
    upstream.default = Reply(503)
    response = client.get(f"{URL}/1")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert len(upstream.hits) == 3  # retried


def test_an_open_breaker_fails_fast_and_shows_in_readiness(
    client: TestClient, upstream: FakeUpstream
) -> None:
    upstream.default = Reply(503)
    for _ in range(2):
        client.get(f"{URL}/1")
    hits = len(upstream.hits)
    response = client.get(f"{URL}/1")
    assert response.status_code == 503
    assert "circuit breaker is open" in response.json()["detail"]
    assert len(upstream.hits) == hits
    ready = client.get("/health/ready")
    assert ready.status_code == 200  # an open breaker does not take this instance out
    assert ready.json()["checks"]["characters_breaker"]["state"] == "open"


def test_a_slow_upstream_is_a_504(client: TestClient, upstream: FakeUpstream) -> None:
    upstream.default = Reply(delay=2.0)
    response = client.get(f"{URL}/1")
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"


def test_a_body_that_is_not_a_character_is_a_502(
    client: TestClient, upstream: FakeUpstream
) -> None:
    upstream.default = Reply(body={"id": 1})
    assert client.get(f"{URL}/1").status_code == 502


def test_many_characters_fail_as_the_first_failed_call(
    client: TestClient, upstream: FakeUpstream
) -> None:
    upstream.then(Reply(body=character), *[Reply(503)] * 3)
    response = client.get(URL, params={"ids": "1,2"})
    assert response.status_code == 503


def cache_answers(result: str) -> float:
    labels = {"upstream": "characters", "result": result}
    return REGISTRY.get_sample_value("upstream_cache_total", labels) or 0.0


def test_a_fresh_answer_comes_from_the_cache_with_its_age(upstream: FakeUpstream) -> None:
    hits, misses = cache_answers("hit"), cache_answers("miss")
    with serving_characters(upstream, characters_cache_ttl_seconds=60) as client:
        first = client.get(f"{URL}/4")
        assert "age" not in first.headers  # fresh from the API
        again = client.get(f"{URL}/4")
        many = client.get(URL, params={"ids": "4,5"})
    assert again.json() == first.json() and again.headers["age"] == "0"
    assert [c["id"] for c in many.json()] == [4, 5]
    assert upstream.hits == ["GET /character/4", "GET /character/5"]
    assert (cache_answers("hit") - hits, cache_answers("miss") - misses) == (2, 2)


def test_a_failing_api_is_answered_from_a_recent_answer_then_503(
    upstream: FakeUpstream,
) -> None:
    stale_before = cache_answers("stale")
    with serving_characters(upstream, characters_cache_stale_seconds=0.5) as client:
        assert client.get(f"{URL}/6").status_code == 200
        upstream.default = Reply(503)
        stale = client.get(f"{URL}/6")
        assert stale.status_code == 200 and stale.json()["name"] == "Morty 6"
        assert "age" in stale.headers
        upstream.default = Reply(404, body={"error": "Character not found"})
        assert client.get(f"{URL}/6").status_code == 404  # a real answer wins over the stale
        upstream.default = Reply(body=character)
        assert client.get(f"{URL}/7").status_code == 200
        upstream.default = Reply(503)
        time.sleep(0.6)  # past the stale window
        assert client.get(f"{URL}/7").status_code == 503
    assert cache_answers("stale") - stale_before == 1
