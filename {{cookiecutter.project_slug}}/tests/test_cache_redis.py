"""The characters cache in Redis (CACHE_URL): refused unless memory://, redis:// or rediss://;
a Redis that cannot be reached never fails a request.

The template's own tests run a real Redis: two processes sharing answers, Redis stopped
mid-run and started again.
"""

import os
import subprocess
import sys
from pathlib import Path

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


# The app built, the memory store opened and closed, in a process of its own: this one has
# imported redis already.
IMPORTS_REDIS = """
import asyncio, sys
from {{ cookiecutter.package_name }}.main import app
from {{ cookiecutter.package_name }}.api.characters import open_cache_store

async def open_and_close() -> None:
    async with open_cache_store("memory://"):
        pass

asyncio.run(open_and_close())
print(any(name.split(".")[0] == "redis" for name in sys.modules))
"""


def test_redis_is_imported_only_for_a_redis_store(tmp_path: Path) -> None:
    """With the cache and the rate-limit counters in memory, redis is never imported: a shorter
    start, less memory."""
    memory = {f"{ENV_PREFIX}CACHE_URL": "memory://"}
    memory[f"{ENV_PREFIX}RATE_LIMIT_STORAGE_URI"] = "memory://"
    # Not the coverage plugin's: measured from another folder, the child's data would lack the
    # project's coverage settings.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE_")}
    ran = subprocess.run(
        [sys.executable, "-c", IMPORTS_REDIS],
        capture_output=True,
        text=True,
        env={**inherited, **memory},
        cwd=tmp_path,  # no .env
        timeout=120,
        check=True,
    )
    assert ran.stdout.strip() == "False"


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
