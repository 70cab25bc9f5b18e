"""Bulkhead, fallback, problem responses and readiness of the resilience package."""

import asyncio
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.resilience import (
    LastKnownGood,
    UpstreamError,
    UpstreamPolicy,
    open_upstream,
    with_fallback,
)
from {{ cookiecutter.package_name }}.resilience.errors import (
    BulkheadFullError,
    CircuitOpenError,
    DeadlineExceeded,
    UpstreamNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)

from {{ cookiecutter.package_name }}.resilience import events as resilience_events
from {{ cookiecutter.package_name }}.settings import Settings

from .resilience_helpers import connected, events, quick_policy
from .upstream import FakeUpstream, Reply


def test_a_policy_takes_its_values_from_the_upstream_settings() -> None:
    settings = Settings(_env_file=None, upstream_attempts=5, upstream_max_concurrency=7)
    policy = UpstreamPolicy.from_settings(settings, "prices", "https://prices.example.com")
    assert (policy.name, policy.attempts, policy.max_concurrency) == ("prices", 5, 7)
    assert policy.deadline == settings.upstream_deadline_seconds


@pytest.mark.anyio
async def test_the_bulkhead_rejects_calls_beyond_its_bound(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.default = Reply(delay=0.5)
    async with connected(quick_policy(upstream.url, max_concurrency=4)) as client:
        calls = [client.request("GET", f"/thing/{i}") for i in range(10)]
        results = await asyncio.gather(*calls, return_exceptions=True)
    answered = [r for r in results if isinstance(r, httpx2.Response)]
    rejected = [r for r in results if isinstance(r, BulkheadFullError)]
    assert (len(answered), len(rejected)) == (4, 6)
    assert len(upstream.hits) == 4
    assert len(events(caplog, "bulkhead full")) == 6


@pytest.mark.anyio
async def test_a_call_waits_a_little_for_a_free_slot(upstream: FakeUpstream) -> None:
    upstream.default = Reply(delay=0.1)
    policy = quick_policy(upstream.url, max_concurrency=1, max_wait=2.0)
    async with connected(policy) as client:
        results = await asyncio.gather(*(client.request("GET", "/thing") for _ in range(3)))
    assert [r.status_code for r in results] == [200, 200, 200]


@pytest.mark.anyio
async def test_a_fallback_default_is_served_when_the_upstream_fails(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.default = Reply(503)
    async with connected(quick_policy(upstream.url, attempts=1)) as client:
        assert await with_fallback(client.get_json("/prices"), {"prices": []}) == {"prices": []}
        upstream.default = Reply(404)
        with pytest.raises(UpstreamNotFound):  # an answer is passed on, not replaced
            await with_fallback(client.get_json("/prices"), {"prices": []})
    assert len(events(caplog, "fallback served")) == 1


@pytest.mark.anyio
async def test_the_last_known_good_value_is_served_when_the_upstream_fails(
    upstream: FakeUpstream,
) -> None:
    cache: LastKnownGood[Any] = LastKnownGood(max_entries=1)
    async with connected(quick_policy(upstream.url, attempts=1)) as client:
        first = await cache.get("a", lambda: client.get_json("/a"))
        upstream.default = Reply(503)
        assert await cache.get("a", lambda: client.get_json("/a")) == first == {"path": "/a"}
        with pytest.raises(UpstreamUnavailable):  # nothing known for this key
            await cache.get("b", lambda: client.get_json("/b"))
        upstream.default = Reply()
        await cache.get("b", lambda: client.get_json("/b"))
    assert list(cache.values) == ["b"]  # at most max_entries kept


@pytest.mark.anyio
@pytest.mark.parametrize("reply", [Reply(500), Reply(body=b"<html>")])
async def test_get_json_refuses_an_error_or_a_body_that_is_not_json(
    upstream: FakeUpstream, reply: Reply
) -> None:
    upstream.default = reply
    async with connected(quick_policy(upstream.url)) as client:
        with pytest.raises(UpstreamError) as raised:
            await client.get_json("/thing")
    assert raised.value.status == 502


@pytest.mark.anyio
async def test_each_upstream_breaker_state_shows_in_readiness(
    app: FastAPI, upstream: FakeUpstream
) -> None:
    async with open_upstream(app, quick_policy(upstream.url, name="prices")):
        readiness = await app.state.health_checks.run()
    assert readiness.status == "ok"
    assert readiness.checks["prices_breaker"].state == "closed"


FAILURES = [
    (CircuitOpenError("prices", "breaker open", retry_after=12.2), 503, "13"),
    (BulkheadFullError("prices", "too many calls", retry_after=1), 503, "1"),
    (UpstreamUnavailable("prices", "answered 503"), 503, "1"),
    (UpstreamTimeout("prices", "no answer within 3s"), 504, None),
    (DeadlineExceeded("prices", "no answer within the 8s deadline"), 504, None),
    (UpstreamNotFound("prices", "/prices/1 was not found"), 404, None),
    (UpstreamError("prices", "answered 500"), 502, None),
]


@pytest.mark.parametrize(("error", "status", "retry_after"), FAILURES)
def test_upstream_failures_are_problems_never_500(
    app: FastAPI, error: UpstreamError, status: int, retry_after: str | None
) -> None:
    @app.get("/fails")
    async def fails() -> None:
        raise error

    with TestClient(app) as client:
        response = client.get("/fails")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers.get("retry-after") == retry_after
    assert response.json()["detail"] == error.detail


def test_every_resilience_event_updates_its_metric() -> None:
    def value(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"upstream": "ledger"}) or 0.0

    retries = value("upstream_retries_total")
    rejections = value("upstream_bulkhead_rejections_total")
    resilience_events.retry_scheduled("ledger", 1, 0.1, "503")
    resilience_events.bulkhead_rejected("ledger", 4)
    resilience_events.breaker_changed("ledger", "open")
    assert value("upstream_retries_total") == retries + 1
    assert value("upstream_bulkhead_rejections_total") == rejections + 1
    assert value("upstream_circuit_breaker_state") == 2  # open
    resilience_events.breaker_changed("ledger", "closed")
    assert value("upstream_circuit_breaker_state") == 0
