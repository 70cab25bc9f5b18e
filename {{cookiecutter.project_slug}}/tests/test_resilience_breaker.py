"""The circuit breaker, against a real HTTP upstream on 127.0.0.1."""

import asyncio
import statistics
import time

import pytest

from {{ cookiecutter.package_name }}.resilience import Upstream
from {{ cookiecutter.package_name }}.resilience.errors import (
    CircuitOpenError,
    UpstreamUnavailable,
)

from .resilience_helpers import connected, events, quick_policy
from .upstream import FakeUpstream, Reply

pytestmark = pytest.mark.anyio


async def open_the_breaker(client: Upstream, upstream: FakeUpstream) -> None:
    upstream.default = Reply(503)
    for _ in range(3):  # the threshold
        with pytest.raises(UpstreamUnavailable):
            await client.request("GET", "/thing")


async def test_the_breaker_opens_at_the_threshold_then_fails_fast_without_calling(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected(quick_policy(upstream.url, attempts=1)) as client:
        upstream.default = Reply(503)
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable):
                await client.request("GET", "/thing")
        assert client.breaker.state == "closed"
        with pytest.raises(UpstreamUnavailable):
            await client.request("GET", "/thing")
        assert client.breaker.state == "open"
        hits = len(upstream.hits)
        durations = []
        for _ in range(50):
            started = time.perf_counter()
            with pytest.raises(CircuitOpenError) as raised:
                await client.request("GET", "/thing")
            durations.append(time.perf_counter() - started)
    assert len(upstream.hits) == hits == 3
    assert statistics.median(durations) < 0.005
    assert raised.value.status == 503 and raised.value.retry_after is not None
    assert [e["state"] for e in events(caplog, "circuit breaker")] == ["open"]


async def test_after_recovery_one_probe_goes_through_and_its_success_closes_the_breaker(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected(quick_policy(upstream.url, attempts=1)) as client:
        await open_the_breaker(client, upstream)
        await asyncio.sleep(0.35)
        assert client.breaker.state == "half_open"
        upstream.default = Reply(delay=0.2)
        probe = asyncio.create_task(client.request("GET", "/probe"))
        await asyncio.sleep(0.05)
        with pytest.raises(CircuitOpenError):  # only one probe at a time
            await client.request("GET", "/other")
        assert (await probe).status_code == 200
        assert client.breaker.state == "closed"
        assert (await client.request("GET", "/other")).status_code == 200
    assert upstream.hits[3:] == ["GET /probe", "GET /other"]
    states = [e["state"] for e in events(caplog, "circuit breaker")]
    assert states == ["open", "half_open", "closed"]


async def test_a_failed_probe_opens_the_breaker_again(upstream: FakeUpstream) -> None:
    async with connected(quick_policy(upstream.url, attempts=1)) as client:
        await open_the_breaker(client, upstream)
        await asyncio.sleep(0.35)
        with pytest.raises(UpstreamUnavailable):
            await client.request("GET", "/probe")
        assert client.breaker.state == "open"
        with pytest.raises(CircuitOpenError):
            await client.request("GET", "/thing")
    assert len(upstream.hits) == 4


async def test_answers_such_as_404_do_not_count_as_failures(upstream: FakeUpstream) -> None:
    upstream.default = Reply(404)
    async with connected(quick_policy(upstream.url)) as client:
        for _ in range(10):
            assert (await client.request("GET", "/missing")).status_code == 404
        assert client.breaker.state == "closed"


async def test_retries_of_one_call_count_once(upstream: FakeUpstream) -> None:
    upstream.default = Reply(503)
    async with connected(quick_policy(upstream.url, attempts=3)) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.request("GET", "/thing")
        assert client.breaker.failure_count == 1
        assert len(upstream.hits) == 3
