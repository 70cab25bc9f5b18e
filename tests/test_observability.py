"""Observability with real components: promtool, a real Prometheus server scraping the baked
service, two workers counted exactly, and spans received over OTLP/HTTP by a receiver here."""

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .combinations import API_KEY_BAKE, JWT_BAKE, LAMBDA_BAKE
from .conftest import Baked, once_in, run
from .dashboards import unexported
from .served import free_port, otlp_receiver, running

serving = contextmanager(running)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def needs(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian package prometheus)")
    return path


def wait_for(check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {check.__name__}")


def requests_total(metrics_text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith("http_requests_total{")
    )


def test_promtool_accepts_the_shipped_config_and_rules(baked: Baked) -> None:
    promtool = needs("promtool")
    deploy = baked.path / "deploy" / "prometheus"
    run([promtool, "check", "config", "prometheus.yml"], deploy)  # loads alerts.yml too
    run([promtool, "check", "rules", "alerts.yml"], deploy)


def messaging_alerts(context: dict[str, Any]) -> int:
    """The alert rules messaging adds: the dead letters, and the outbox's backlog with one."""
    if context["messaging"] != "rabbitmq":
        return 0
    return 2 if context["database"] != "none" else 1


def test_real_prometheus_scrapes_valid_metrics(installed: Baked, tmp_path: Path) -> None:
    promtool, prometheus = needs("promtool"), needs("prometheus")
    with serving(installed.path, installed.package) as service:
        for path in ("/openapi.json", "/no/such/page", "/no/other/page", "/health/live"):
            httpx.get(f"{service.url}{path}")
        text = httpx.get(f"{service.url}/metrics").text
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert 'handler="none",method="GET",status="4xx"} 2.0' in text
        assert 'handler="/health/live"' not in text
        # Every metric the service's Grafana dashboards name (the worker's: test_messaging.py).
        assert unexported(installed, text, worker=False) == {}

        deploy = installed.path / "deploy" / "prometheus"
        config = yaml.safe_load((deploy / "prometheus.yml").read_text())
        config["global"]["scrape_interval"] = "1s"
        job = config["scrape_configs"][0]  # the service's (the worker's, when baked, is left out)
        job["static_configs"] = [{"targets": [service.url.removeprefix("http://")]}]
        config["scrape_configs"] = [job]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copy(deploy / "alerts.yml", tmp_path / "alerts.yml")
        api = f"http://127.0.0.1:{free_port()}/api/v1"
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address={api.split('/')[2]}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def target_up() -> bool:
                targets = httpx.get(f"{api}/targets").json()["data"]["activeTargets"]
                return bool(targets) and targets[0]["health"] == "up"

            def request_series() -> list[Any]:
                query = {"query": f'http_requests_total{{job="{job["job_name"]}"}}'}
                result: list[Any] = httpx.get(f"{api}/query", params=query).json()["data"][
                    "result"
                ]
                return result

            wait_for(lambda: _ok(target_up))
            series = wait_for(lambda: _ok(request_series))
            handlers = {item["metric"]["handler"] for item in series}
            assert {"/openapi.json", "none"} <= handlers
            groups = httpx.get(f"{api}/rules").json()["data"]["groups"]
            assert len(groups[0]["rules"]) == 5 + messaging_alerts(installed.context)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _ok(check: Callable[[], Any]) -> Any:
    """A check that fails while the server is still starting counts as not yet."""
    try:
        return check()
    except (httpx.TransportError, KeyError, ValueError):
        return None


def young_collections(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith('python_gc_collections_total{generation="0"}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no python_gc_collections_total in /metrics")


def test_the_garbage_collector_is_on_once_the_service_serves(
    installed: Baked, request: pytest.FixtureRequest
) -> None:
    """The lifespan freezes what start-up made (gc.freeze); the collector itself stays on, or
    the service would never free a reference cycle."""
    once_in(request, JWT_BAKE, "the lifespan's gc.freeze() is the same whatever the options")
    with serving(installed.path, installed.package) as service:

        def collected() -> bool:  # with the collector off, traffic would not move the count
            before = young_collections(httpx.get(f"{service.url}/metrics").text)
            for _ in range(20):
                httpx.get(f"{service.url}/openapi.json")
            return young_collections(httpx.get(f"{service.url}/metrics").text) > before

        wait_for(collected, timeout=30)


def test_two_workers_count_every_request_exactly(
    installed: Baked, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    once_in(request, JWT_BAKE, "the metrics' set-up is the same whatever the options")
    settings = {
        f"{installed.package.upper()}_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    (tmp_path / "counter_1.db").write_bytes(b"stale, from an earlier run")
    # Each worker imports the app after the parent starts: slow on a busy machine.
    with serving(installed.path, installed.package, settings, timeout=120) as service:
        before = requests_total(httpx.get(f"{service.url}/metrics").text)
        served = 60
        for number in range(served):
            httpx.get(f"{service.url}/no/such/{number}")  # a new connection each: both workers
        # Whichever worker answers the scrape, it adds up both workers' files.
        for _ in range(4):
            assert requests_total(httpx.get(f"{service.url}/metrics").text) == before + served
        assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per worker


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Any]]]:
    with otlp_receiver() as (endpoint, spans):
        yield endpoint, spans


def test_spans_continue_the_incoming_trace_and_logs_carry_its_id(
    installed: Baked, receiver: tuple[str, list[Any]], request: pytest.FixtureRequest
) -> None:
    # Spans of the options' own (queries, outbound calls, messages): their own tests.
    once_in(request, API_KEY_BAKE, "the request's span and access line are the same everywhere")
    endpoint, spans = receiver
    settings = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        # Nothing is exported before shutdown: the span arriving proves the final flush.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        f"{installed.package.upper()}_LOG_FORMAT": "json",  # its lines are read below
    }
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "x-request-id": "otlp-test-1"}
    with serving(installed.path, installed.package, settings) as service:
        assert httpx.get(f"{service.url}/openapi.json", headers=headers).status_code == 200
        httpx.get(f"{service.url}/health/live", headers={"traceparent": headers["traceparent"]})
        assert spans == []
        output = service.stop()
    [span] = spans  # health checks are not traced
    assert span.trace_id.hex() == TRACE_ID
    assert span.parent_span_id.hex() == PARENT_ID
    assert span.name == "GET /openapi.json"
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    in_request = [line for line in lines if line.get("request_id") == "otlp-test-1"]
    # Every line logged inside the request carries its trace (in a redis bake without a Redis,
    # the rate limiter's warning too); one of them is the access line.
    assert {line.get("trace_id") for line in in_request} == {TRACE_ID}
    access = [line for line in in_request if line["logger"] == "access"]
    assert len(access) == 1
    assert access[0]["trace_id"] == TRACE_ID
    assert access[0]["span_id"] == span.span_id.hex()
    assert access[0]["route"] == "/openapi.json"
    assert access[0]["method"] == "GET" and access[0]["status"] == 200
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", access[0]["timestamp"])


def test_unsampled_requests_export_nothing(
    installed: Baked, receiver: tuple[str, list[Any]], request: pytest.FixtureRequest
) -> None:
    once_in(request, LAMBDA_BAKE, "the sampling is the same whatever the options")
    endpoint, spans = receiver
    settings = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        f"{installed.package.upper()}_TRACE_SAMPLE_RATIO": "0",
    }
    with serving(installed.path, installed.package, settings) as service:
        for _ in range(20):
            httpx.get(f"{service.url}/openapi.json")
        service.stop()
    assert spans == []
