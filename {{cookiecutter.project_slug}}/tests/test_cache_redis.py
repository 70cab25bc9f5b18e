"""The characters cache in Redis (CACHE_URL): refused unless memory://, redis:// or rediss://;
a Redis that cannot be reached never fails a request.

The template's own tests run a real Redis: two processes sharing answers, Redis stopped
mid-run and started again.
"""

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.resilience import cache_redis
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, Settings, describe

from .conftest import free_port
from .test_characters import URL, serving_characters
from .upstream import FakeUpstream


def test_the_cache_url_is_memory_or_redis_and_kept_secret() -> None:
    url = "rediss://:a-redis-password@cache.internal:6380/0"
    assert Settings(_env_file=None, cache_url=url).cache_url.get_secret_value() == url
    assert "a-redis-password" not in repr(Settings(_env_file=None, cache_url=url))
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, cache_url="memcached://cache.internal:11211")
    expected = f"{ENV_PREFIX}CACHE_URL: must start with memory://, redis:// or rediss://"
    assert describe(refused.value) == expected


def test_an_unreachable_redis_is_a_miss_logged_once(
    upstream: FakeUpstream, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_redis, "RETRY_SECONDS", 0)  # every request tries Redis again
    labels = {"upstream": "characters", "result": "error"}
    errors = REGISTRY.get_sample_value("upstream_cache_total", labels) or 0.0
    uri = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with serving_characters(upstream, cache_url=uri, characters_cache_ttl_seconds=60) as client:
        statuses = [client.get(f"{URL}/3").status_code for _ in range(3)]
    assert statuses == [200] * 3
    assert upstream.hits == ["GET /character/3"] * 3  # no cache, the upstream answers
    assert (REGISTRY.get_sample_value("upstream_cache_total", labels) or 0.0) > errors
    assert capsys.readouterr().out.count("cache store unreachable") == 1
