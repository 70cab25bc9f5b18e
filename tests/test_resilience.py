"""The resilience of the baked service, served the production way (`python -m <package>`)
against a fake characters API on 127.0.0.1 whose answers each test sets.

The fake upstream is the baked project's own test helper (tests/upstream.py, stdlib only).
"""

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import ModuleType
from typing import Any

import httpx
import pytest

from .combinations import COMBINATIONS, first_with_examples
from .conftest import Baked, bake_module
from .redis_server import Redis, stop
from .served import Service, free_port, running
from .test_observability import PARENT_ID, TRACE_ID, receiver  # noqa: F401 (a fixture)

URL = "/api/v1/characters"


def load_fake_upstream(baked: Baked) -> ModuleType:
    return bake_module(baked, "tests/upstream.py")


def character(path: str) -> dict[str, Any]:
    character_id = int(path.rsplit("/", 1)[1])
    return {"id": character_id, "name": f"Rick {character_id}", "status": "Alive",
            "species": "Human", "gender": "Male", "image": f"https://example.com/{character_id}",
            "episode": []}  # fmt: skip


def quick_settings(baked: Baked, upstream_url: str) -> dict[str, str]:
    prefix = baked.package.upper()
    return {
        f"{prefix}_CHARACTERS_API_URL": upstream_url,
        f"{prefix}_UPSTREAM_ATTEMPT_TIMEOUT_SECONDS": "0.3",
        f"{prefix}_UPSTREAM_DEADLINE_SECONDS": "1.0",
        f"{prefix}_UPSTREAM_BACKOFF_SECONDS": "0.01",
        f"{prefix}_UPSTREAM_BREAKER_THRESHOLD": "100",  # the tests share one service
        # Every call reaches the fake upstream (the cache has its own test below).
        f"{prefix}_CHARACTERS_CACHE_TTL_SECONDS": "0",
        f"{prefix}_CHARACTERS_CACHE_STALE_SECONDS": "0",
    }


@pytest.fixture(scope="module")
def fake(installed: Baked) -> Iterator[ModuleType]:
    if not installed.context["include_examples"]:
        pytest.skip("include_examples is off")
    yield load_fake_upstream(installed)


@pytest.fixture(scope="module")
def upstream(fake: ModuleType) -> Iterator[Any]:
    with fake.serving() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def service(installed: Baked, upstream: Any) -> Iterator[Service]:
    yield from running(installed.path, installed.package, quick_settings(installed, upstream.url))


@pytest.fixture
def api(service: Service, upstream: Any, fake: ModuleType) -> Iterator[str]:
    upstream.default = fake.Reply(body=character)
    upstream.script.clear()
    upstream.hits.clear()
    yield f"{service.url}{URL}"


def test_a_character_is_served_from_the_upstream(api: str, upstream: Any) -> None:
    response = httpx.get(f"{api}/1")
    assert response.status_code == 200
    assert response.json() == {"id": 1, "name": "Rick 1", "status": "Alive", "species": "Human",
                               "gender": "Male", "image": "https://example.com/1"}  # fmt: skip
    assert upstream.hits == ["GET /character/1"]


def test_many_characters_keep_the_order_asked(api: str) -> None:
    response = httpx.get(api, params={"ids": "5,3,9,1"})
    assert response.status_code == 200
    assert [c["id"] for c in response.json()] == [5, 3, 9, 1]
    assert httpx.get(api, params={"ids": ",".join(["1"] * 21)}).status_code == 422


def test_the_upstream_404_is_a_404_problem(api: str, upstream: Any, fake: ModuleType) -> None:
    upstream.default = fake.Reply(404, body={"error": "Character not found"})
    response = httpx.get(f"{api}/7")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "Character 7 does not exist"


def test_a_flaky_upstream_is_retried(api: str, upstream: Any, fake: ModuleType) -> None:
    upstream.then(fake.Reply(503), fake.Reply(close=True))
    assert httpx.get(f"{api}/2").status_code == 200
    assert len(upstream.hits) == 3


def test_a_slow_upstream_is_a_504_within_the_deadline(
    api: str, upstream: Any, fake: ModuleType
) -> None:
    upstream.default = fake.Reply(delay=3.0)
    started = time.monotonic()
    response = httpx.get(f"{api}/3", timeout=10)
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert time.monotonic() - started < 1.0 + 0.5


def test_readiness_shows_the_breaker_state(service: Service) -> None:
    response = httpx.get(f"{service.url}/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["characters_breaker"]["state"] == "closed"


def test_an_unreachable_upstream_is_a_503_with_retry_after_then_the_breaker_opens(
    installed: Baked, fake: ModuleType
) -> None:
    settings = quick_settings(installed, f"http://127.0.0.1:{free_port()}")
    settings[f"{installed.package.upper()}_UPSTREAM_BREAKER_THRESHOLD"] = "2"
    for service in running(installed.path, installed.package, settings):
        responses = [httpx.get(f"{service.url}{URL}/1") for _ in range(3)]
        ready = httpx.get(f"{service.url}/health/ready").json()
    assert [r.status_code for r in responses] == [503, 503, 503]
    for response in responses:
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
    assert "circuit breaker is open" in responses[2].json()["detail"]
    assert ready["checks"]["characters_breaker"]["state"] == "open"


def test_an_outbound_call_is_a_child_span_and_carries_the_trace(
    installed: Baked, upstream: Any, fake: ModuleType, receiver: tuple[str, list[Any]]
) -> None:
    endpoint, spans = receiver
    upstream.default = fake.Reply(body=character)
    upstream.traceparents.clear()
    settings = {**quick_settings(installed, upstream.url), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"  # sampled by the caller
    for service in running(installed.path, installed.package, settings):
        response = httpx.get(f"{service.url}{URL}/7", headers={"traceparent": traceparent})
        assert response.status_code == 200
        service.stop()  # spans are flushed at shutdown
    server = next(span for span in spans if span.kind == span.SPAN_KIND_SERVER)
    client = next(span for span in spans if span.kind == span.SPAN_KIND_CLIENT)
    assert server.trace_id.hex() == client.trace_id.hex() == TRACE_ID
    assert client.parent_span_id == server.span_id
    [sent] = upstream.traceparents
    assert sent == f"00-{TRACE_ID}-{client.span_id.hex()}-01"


def test_retries_and_breaker_changes_are_counted_in_the_metrics(
    installed: Baked, fake: ModuleType
) -> None:
    settings = quick_settings(installed, f"http://127.0.0.1:{free_port()}")  # nobody listens
    settings[f"{installed.package.upper()}_UPSTREAM_BREAKER_THRESHOLD"] = "1"
    for service in running(installed.path, installed.package, settings):
        assert httpx.get(f"{service.url}{URL}/1").status_code == 503
        metrics = httpx.get(f"{service.url}/metrics").text
    assert 'upstream_retries_total{upstream="characters"} 2.0' in metrics  # 3 attempts
    assert 'upstream_circuit_breaker_state{upstream="characters"} 2.0' in metrics  # open


def test_the_cache_makes_one_call_for_concurrent_misses_then_serves_stale(
    installed: Baked, upstream: Any, fake: ModuleType
) -> None:
    """Its own service: fresh for 3 s (the twenty requests, even on a busy machine), then served
    stale for a minute while the API fails."""
    prefix = installed.package.upper()
    settings = {
        **quick_settings(installed, upstream.url),
        f"{prefix}_CHARACTERS_CACHE_TTL_SECONDS": "3",
        f"{prefix}_CHARACTERS_CACHE_STALE_SECONDS": "60",
        f"{prefix}_RATE_LIMIT_DEFAULT": "100000/minute",
    }
    upstream.default = fake.Reply(body=character, delay=0.15)  # the misses overlap
    upstream.script.clear()
    upstream.hits.clear()
    with contextmanager(running)(installed.path, installed.package, settings) as service:
        url = f"{service.url}{URL}/42"

        async def twenty_at_once() -> list[int]:
            async with httpx.AsyncClient(timeout=10) as client:
                answers = await asyncio.gather(*(client.get(url) for _ in range(20)))
            return [answer.status_code for answer in answers]

        assert asyncio.run(twenty_at_once()) == [200] * 20
        assert upstream.hits == ["GET /character/42"]
        time.sleep(3.2)  # no longer fresh
        upstream.default = fake.Reply(503)
        stale = httpx.get(url)
        assert stale.status_code == 200 and stale.json()["name"] == "Rick 42"
        assert int(stale.headers["age"]) >= 1
        metrics = httpx.get(f"{service.url}/metrics").text
    assert 'upstream_cache_total{result="stale",upstream="characters"} 1.0' in metrics


def test_two_processes_share_the_cache_through_redis_and_outlive_it(
    request: pytest.FixtureRequest, installed: Baked, upstream: Any, fake: ModuleType, redis: Redis
) -> None:
    """CACHE_URL on a real Redis: what one service fetched, the other serves with its `Age`;
    Redis stopped, both still answer from the upstream; Redis back, the cache works again."""
    if request.node.callspec.params["baked"] != COMBINATIONS[first_with_examples()]:
        pytest.skip("the real-Redis cache checks run in one combination")
    prefix = installed.package.upper()
    settings = {
        **quick_settings(installed, upstream.url),
        f"{prefix}_CHARACTERS_CACHE_TTL_SECONDS": "60",
        f"{prefix}_CACHE_URL": redis.url,
        f"{prefix}_RATE_LIMIT_DEFAULT": "100000/minute",
        f"{prefix}_LOG_FORMAT": "json",  # read as data once they stop
    }
    upstream.default = fake.Reply(body=character)
    upstream.script.clear()
    upstream.hits.clear()
    with ExitStack() as stack:
        one, two = (
            stack.enter_context(contextmanager(running)(installed.path, installed.package, settings))
            for _ in range(2)
        )
        assert "age" not in httpx.get(f"{one.url}{URL}/42").headers
        key = f"{installed.package}:cache:characters:42"  # expires after TTL + stale window
        assert 58_000 < redis.command("pttl", key) <= 60_000
        time.sleep(1.1)
        shared = httpx.get(f"{two.url}{URL}/42")
        assert shared.json()["name"] == "Rick 42" and int(shared.headers["age"]) >= 1
        assert upstream.hits == ["GET /character/42"]

        stop(redis.process)
        down = [httpx.get(f"{s.url}{URL}/{i}") for i in (42, 43) for s in (one, two)]
        assert [r.status_code for r in down] == [200] * 4  # from the upstream, no 5xx
        assert upstream.hits.count("GET /character/43") == 2
        metrics = httpx.get(f"{one.url}/metrics").text
        assert 'upstream_cache_total{result="error",upstream="characters"}' in metrics

        redis.start()
        time.sleep(1.1)  # the services try Redis again at most once a second
        assert httpx.get(f"{one.url}{URL}/44").status_code == 200
        assert "age" in httpx.get(f"{two.url}{URL}/44").headers
        assert upstream.hits.count("GET /character/44") == 1
        outputs = [service.stop() for service in (one, two)]
    for output in outputs:
        messages = [json.loads(line)["message"] for line in output.splitlines()]
        assert sum(m.startswith("cache store unreachable") for m in messages) == 1
        assert "cache store reachable again" in messages
