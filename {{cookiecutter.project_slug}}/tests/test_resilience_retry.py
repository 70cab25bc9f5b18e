"""Retry and timeouts, against a real HTTP upstream on 127.0.0.1."""

import time
from email.utils import formatdate

import pytest
from prometheus_client import REGISTRY

from {{ cookiecutter.package_name }}.resilience.errors import (
    DeadlineExceeded,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from {{ cookiecutter.package_name }}.resilience.retry import retry_after_seconds

from .conftest import free_port
from .resilience_helpers import connected, events, quick_policy
from .upstream import FakeUpstream, Reply

pytestmark = pytest.mark.anyio


async def test_transient_failures_are_retried_until_one_succeeds(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.then(Reply(503), Reply(502))
    async with connected(quick_policy(upstream.url)) as client:
        response = await client.request("GET", "/thing")
    assert response.status_code == 200
    assert upstream.hits == ["GET /thing"] * 3
    retries = events(caplog, "upstream call retried")
    assert [(r["upstream"], r["attempt"]) for r in retries] == [("fake", 1), ("fake", 2)]


async def test_each_attempt_is_timed_failed_or_not(upstream: FakeUpstream) -> None:
    def timed() -> float:
        labels = {"upstream": "fake"}
        return REGISTRY.get_sample_value("upstream_request_duration_seconds_count", labels) or 0.0

    before = timed()
    upstream.then(Reply(503))
    async with connected(quick_policy(upstream.url)) as client:
        assert (await client.request("GET", "/thing")).status_code == 200
    assert timed() == before + 2


async def test_the_attempts_are_bounded_and_each_backoff_stays_in_its_jittered_window(
    upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.default = Reply(504)
    policy = quick_policy(upstream.url, attempts=5, backoff=0.02, backoff_max=0.05)
    async with connected(policy) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable):
            await client.request("GET", "/thing")
        elapsed = time.monotonic() - started
    assert len(upstream.hits) == 5
    waits = [r["wait_seconds"] for r in events(caplog, "upstream call retried")]
    assert len(waits) == 4
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(0.05, 0.02 * 2 ** (attempt - 1)) + 0.001  # rounded to 1 ms
    assert elapsed >= sum(waits) - 0.005  # the waits really happened


async def test_a_refused_connection_is_retried_then_unavailable() -> None:
    async with connected(quick_policy(f"http://127.0.0.1:{free_port()}")) as client:
        with pytest.raises(UpstreamUnavailable, match="ConnectError"):
            await client.request("GET", "/thing")


async def test_a_dropped_connection_is_retried(upstream: FakeUpstream) -> None:
    upstream.then(Reply(close=True))
    async with connected(quick_policy(upstream.url)) as client:
        assert (await client.request("GET", "/thing")).status_code == 200
    assert len(upstream.hits) == 2


async def test_429_is_retried_after_the_retry_after_delay(upstream: FakeUpstream) -> None:
    upstream.then(Reply(429, headers={"Retry-After": "1"}))
    async with connected(quick_policy(upstream.url)) as client:
        started = time.monotonic()
        assert (await client.request("GET", "/thing")).status_code == 200
    assert time.monotonic() - started >= 1.0
    assert len(upstream.hits) == 2


async def test_a_retry_after_past_the_deadline_is_not_waited_for(upstream: FakeUpstream) -> None:
    upstream.default = Reply(503, headers={"Retry-After": "30"})
    async with connected(quick_policy(upstream.url)) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable) as raised:
            await client.request("GET", "/thing")
    assert time.monotonic() - started < 1.0
    assert raised.value.retry_after == 30
    assert len(upstream.hits) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500])
async def test_other_answers_are_returned_without_retry(
    upstream: FakeUpstream, status: int
) -> None:
    upstream.default = Reply(status)
    async with connected(quick_policy(upstream.url)) as client:
        assert (await client.request("GET", "/thing")).status_code == status
    assert len(upstream.hits) == 1


async def test_a_post_is_not_retried_unless_the_caller_marks_it_idempotent(
    upstream: FakeUpstream,
) -> None:
    upstream.then(Reply(503), Reply(503))
    async with connected(quick_policy(upstream.url, breaker_threshold=10)) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.request("POST", "/orders", json={"n": 1})
        assert len(upstream.hits) == 1
        response = await client.request("POST", "/orders", json={"n": 1}, idempotent=True)
    assert response.status_code == 200
    assert upstream.hits == ["POST /orders"] * 3


async def test_a_slow_attempt_times_out_and_the_next_one_answers(upstream: FakeUpstream) -> None:
    upstream.then(Reply(delay=1.0))
    async with connected(quick_policy(upstream.url, attempt_timeout=0.2)) as client:
        assert (await client.request("GET", "/thing")).status_code == 200
    assert len(upstream.hits) == 2


@pytest.mark.parametrize("deadline", [0.3, 0.7])
async def test_no_call_outlives_its_deadline(upstream: FakeUpstream, deadline: float) -> None:
    upstream.default = Reply(delay=2.0)
    policy = quick_policy(upstream.url, attempt_timeout=0.25, attempts=10, deadline=deadline)
    async with connected(policy) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            await client.request("GET", "/thing")
        elapsed = time.monotonic() - started
    assert deadline - 0.05 <= elapsed <= deadline + 0.25  # tolerance for a busy machine


async def test_a_caller_can_give_one_call_a_shorter_deadline(upstream: FakeUpstream) -> None:
    upstream.default = Reply(delay=2.0)
    async with connected(quick_policy(upstream.url)) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="0.2s deadline"):
            await client.request("GET", "/thing", deadline=0.2)
    assert time.monotonic() - started <= 0.2 + 0.25


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("7") == 7.0
    in_a_minute = retry_after_seconds(formatdate(time.time() + 60, usegmt=True))
    assert in_a_minute is not None and 55 <= in_a_minute <= 61
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
