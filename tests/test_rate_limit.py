"""Rate limiting against real components: a real Redis shared by two service processes, and a
real nginx in front of the service."""

import asyncio
import json
import re
import signal
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from .conftest import Baked
from .redis_server import Redis, stop, wait_for_port
from .served import Service, free_port, running

serving = contextmanager(running)

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


def test_only_a_redis_or_examples_bake_depends_on_redis(baked: Baked) -> None:
    """Redis for the rate-limit counters, or for the characters cache (CACHE_URL)."""
    project = tomllib.loads((baked.path / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~\[]", dependency)[0] for dependency in project["dependencies"]}
    settings = (baked.path / "src" / baked.package / "settings.py").read_text()
    redis_test = baked.path / "tests" / "test_rate_limit_redis.py"
    cache_store = baked.path / "src" / baked.package / "resilience" / "cache_redis.py"
    assert "limits" in names and "slowapi" not in names  # limits' async API, not slowapi
    if baked.context["rate_limit_storage"] == "redis":
        assert 'rate_limit_storage_uri: str = "redis://localhost:6379/0"' in settings
        assert redis_test.is_file()
    else:
        assert 'rate_limit_storage_uri: str = "memory://"' in settings
        assert not redis_test.exists()
    assert cache_store.is_file() == baked.context["include_examples"]
    wanted = baked.context["rate_limit_storage"] == "redis" or baked.context["include_examples"]
    assert ("redis" in names) == wanted


def redis_settings(baked: Baked, redis: Redis, limit: str) -> dict[str, str]:
    if baked.context["rate_limit_storage"] != "redis":
        pytest.skip("rate_limit_storage is not redis")
    prefix = baked.package.upper()
    return {
        f"{prefix}_RATE_LIMIT_STORAGE_URI": redis.url,
        f"{prefix}_RATE_LIMIT_DEFAULT": limit,
        # No access log: nobody reads the service's output pipe until it stops.
        f"{prefix}_LOG_LEVEL": "WARNING",
        f"{prefix}_LOG_FORMAT": "json",  # read as data once it stops
    }


async def fire(urls: list[str], total: int, in_flight: int) -> list[int]:
    """`total` requests, `in_flight` at a time, spread over `urls`."""
    slots = asyncio.Semaphore(in_flight)
    pool = httpx.Limits(max_connections=in_flight)
    async with httpx.AsyncClient(limits=pool, timeout=30) as client:

        async def one(url: str) -> int:
            async with slots:
                return (await client.get(url)).status_code

        return await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(total)))


def test_two_processes_sharing_redis_let_exactly_the_limit_through(
    installed: Baked, redis: Redis
) -> None:
    """Under load, a slow answer from Redis is not an outage: no request goes uncounted."""
    settings = redis_settings(installed, redis, "50/minute")
    with ExitStack() as stack:
        services = [
            stack.enter_context(serving(installed.path, installed.package, settings))
            for _ in range(2)
        ]
        urls = [f"{s.url}/openapi.json" for s in services]
        statuses = asyncio.run(fire(urls, total=200, in_flight=32))
    assert statuses.count(200) == 50
    assert statuses.count(429) == 200 - 50


def test_the_service_keeps_serving_while_redis_hangs_then_dies(
    installed: Baked, redis: Redis
) -> None:
    settings = redis_settings(installed, redis, "100000/minute")
    with (
        serving(installed.path, installed.package, settings) as service,
        httpx.Client(timeout=10) as client,
    ):
        url = f"{service.url}/openapi.json"
        assert client.get(url).headers["x-ratelimit-remaining"] == "99999"
        # Mid-run: Redis hangs (SIGSTOP: connections open, no answers), then is killed.
        threading.Timer(0.5, redis.process.send_signal, [signal.SIGSTOP]).start()
        threading.Timer(1.5, redis.process.kill).start()
        statuses: list[int] = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            statuses.append(client.get(url).status_code)
        last = client.get(url)
        output = service.stop()
    assert set(statuses) == {200}
    assert len(statuses) > 30
    assert last.headers["x-ratelimit-limit"] == "100000"  # still counted, in memory
    logged = [json.loads(line) for line in output.splitlines()]
    messages = [e["message"] for e in logged if e["logger"].endswith("rate_limit")]
    assert len(messages) == 1  # once per outage
    assert messages[0].startswith("rate-limit storage unreachable")


@pytest.fixture
def behind_nginx(installed: Baked, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    """The service trusting only 127.0.0.1, and a real nginx on 127.0.0.1 in front of it."""
    prefix = installed.package.upper()
    settings = {
        f"{prefix}_TRUSTED_PROXIES": "127.0.0.1",
        f"{prefix}_RATE_LIMIT_DEFAULT": "5/minute",
        f"{prefix}_RATE_LIMIT_STORAGE_URI": "memory://",
        f"{prefix}_LOG_FORMAT": "json",  # read as data once it stops
    }
    port = free_port()
    with serving(installed.path, installed.package, settings) as service:
        upstream = service.url.rsplit(":", 1)[1]
        config = tmp_path / "nginx.conf"
        config.write_text(NGINX_CONF.format(tmp=tmp_path, port=port, upstream=upstream))
        command = ["nginx", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "err")]
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, process, "nginx")
            yield service, f"http://127.0.0.1:{port}"
        finally:
            stop(process)


def client_from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def test_behind_nginx_each_client_address_has_its_own_bucket(
    behind_nginx: tuple[Service, str],
) -> None:
    service, proxy = behind_nginx
    with client_from("127.0.0.2") as first, client_from("127.0.0.3") as second:
        # The first client forges a hop; nginx appends its real address, which is what counts.
        forged = {"X-Forwarded-For": "203.0.113.50"}
        url = "/openapi.json"
        statuses = [first.get(f"{proxy}{url}", headers=forged).status_code for _ in range(6)]
        other = second.get(f"{proxy}{url}")
        # The second client, now straight to the service (an untrusted peer), forging hops:
        # the same bucket as through nginx, whatever it claims.
        direct = [
            second.get(f"{service.url}{url}", headers={"X-Forwarded-For": f"198.51.100.{i}"})
            for i in range(5)
        ]
    assert statuses == [200] * 5 + [429]
    assert other.status_code == 200
    assert other.headers["x-ratelimit-remaining"] == "4"
    assert [r.headers["x-ratelimit-remaining"] for r in direct] == ["3", "2", "1", "0", "0"]
    assert [r.status_code for r in direct] == [200] * 4 + [429]
    entries = [json.loads(line) for line in service.stop().splitlines()]
    access = [e for e in entries if e.get("logger") == "access" and e["status"] in (200, 429)]
    # uvicorn's proxy-headers rewrite names the same client as the rate limiter.
    assert {e["client"] for e in access} == {"127.0.0.2", "127.0.0.3"}
