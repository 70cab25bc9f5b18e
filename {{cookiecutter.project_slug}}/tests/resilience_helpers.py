"""Shared by the resilience tests: a quick policy and an upstream client opened on a fake."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.resilience import (
    Upstream,
    UpstreamPolicy,
    create_http_client,
)


def quick_policy(url: str, **changes: Any) -> UpstreamPolicy:
    """Small numbers, so that retries, recovery and waits take milliseconds."""
    policy = UpstreamPolicy(
        name="fake",
        base_url=url,
        attempt_timeout=1.0,
        deadline=3.0,
        attempts=3,
        backoff=0.01,
        backoff_max=0.05,
        breaker_threshold=3,
        breaker_recovery=0.3,
        max_concurrency=4,
        max_wait=0.05,
    )
    return replace(policy, **changes)


@asynccontextmanager
async def connected(policy: UpstreamPolicy) -> AsyncIterator[Upstream]:
    async with create_http_client(policy) as client:
        yield Upstream(policy, client)


def events(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, Any]]:
    """The resilience events logged so far whose message starts with `message`."""
    return [
        vars(record)
        for record in caplog.records
        if record.name.endswith("resilience.events") and record.getMessage().startswith(message)
    ]
