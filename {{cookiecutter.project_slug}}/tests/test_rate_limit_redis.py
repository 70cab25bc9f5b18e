"""Counters in Redis: when Redis cannot be reached, the service keeps serving and counting,
per process in memory.

The template's own tests run a real Redis: two processes sharing one limit, Redis stopped
mid-run.
"""

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.security.rate_limit import RateLimits
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import free_port


def test_an_unreachable_redis_counts_in_memory(capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = Settings(_env_file=None, rate_limit_storage_uri=uri, rate_limit_default="15/minute")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/health/ready")
        responses = [client.get("/openapi.json") for _ in range(20)]
        limits: RateLimits = client.app_state["rate_limits"]
    assert ready.status_code == 200
    assert [r.status_code for r in responses] == [200] * 15 + [429] * 5
    assert limits.down
    assert limits.fallback_checks == 20
    assert capsys.readouterr().out.count("rate-limit storage unreachable") == 1
