"""Counters in Redis: when Redis cannot be reached, the service keeps serving.

The template's own tests run a real Redis: two processes sharing one limit, Redis stopped
mid-run.
"""

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.security.rate_limit import RateLimits
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import free_port


def test_an_unreachable_redis_fails_open(capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(Settings(_env_file=None, rate_limit_storage_uri=uri))
    with TestClient(app) as client:
        responses = [client.get("/health/ready")] + [client.get("/nowhere") for _ in range(20)]
        limits: RateLimits = client.app_state["rate_limits"]
    assert [r.status_code for r in responses] == [200] + [404] * 20
    assert limits.down
    assert limits.skipped_checks == 20
    assert capsys.readouterr().out.count("rate-limit storage unreachable") == 1
