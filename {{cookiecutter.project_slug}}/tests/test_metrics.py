"""Metrics: requests counted by route template and status class, the endpoint's token, the
service's own metrics, the workers' shared directory; and what must stay right whatever the
clients send and however the workers start: label values bounded, a stopped worker's gauges
gone, no worker counting alone unnoticed."""

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.observability import metrics
from {{ cookiecutter.package_name }}.observability.middleware import ObservabilityMiddleware
from {{ cookiecutter.package_name }}.observability.tracing import Tracing
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import production_settings
from .probe_app import build, requests_count, served

INVENTED_METHODS = [f"INVENTED{number}" for number in range(300)]


def test_requests_are_counted_by_route_template_and_status_class() -> None:
    before = requests_count("/probe/items/{item_id}")
    before_404 = requests_count("/probe/items/{item_id}", "4xx")
    with served(build()) as client:
        client.get("/probe/items/1")
        client.get("/probe/items/2")
        client.get("/probe/items/not-a-number")
        text = client.get("/metrics").text
    assert requests_count("/probe/items/{item_id}") == before + 2
    assert requests_count("/probe/items/{item_id}", "4xx") == before_404 + 1
    assert "/probe/items/1" not in text
    assert 'http_request_duration_seconds_bucket{handler="/probe/items/{item_id}"' in text
    assert "process_cpu_seconds_total" in text


def test_unmatched_paths_are_grouped_and_probes_are_not_counted() -> None:
    before = requests_count("none", "4xx")
    with served(build()) as client:
        client.get("/no/such/page")
        client.get("/another/missing/one")
        client.get("/health/live")
        client.get("/metrics")
        text = client.get("/metrics").text
    assert requests_count("none", "4xx") == before + 2
    assert 'handler="/health/live"' not in text
    assert 'handler="/metrics"' not in text


def test_unhandled_errors_count_as_5xx_and_the_docs_by_their_path() -> None:
    before = requests_count("/probe/fail", "5xx")
    before_docs = requests_count("/docs")
    with served(build()) as client:
        assert client.get("/probe/fail").status_code == 500
        assert client.get("/docs").status_code == 200
    assert requests_count("/probe/fail", "5xx") == before + 1
    assert requests_count("/docs") == before_docs + 1


def test_a_metrics_token_protects_the_endpoint() -> None:
    with served(build(metrics_token="s3cret")) as client:
        refused = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        allowed = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert refused.status_code == wrong.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"] == "Bearer"
    assert allowed.status_code == 200


def test_service_metrics_are_recorded() -> None:
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    retries = value("upstream_retries_total", upstream="prices")
    metrics.record_retry("prices")
    metrics.record_bulkhead_rejection("prices")
    metrics.record_rate_limited()
    metrics.record_breaker_state("prices", "open")
    assert value("upstream_retries_total", upstream="prices") == retries + 1
    assert value("upstream_bulkhead_rejections_total", upstream="prices") >= 1
    assert value("http_rate_limited_total", limit="default") >= 1
    assert value("upstream_circuit_breaker_state", upstream="prices") == 2
    metrics.record_breaker_state("prices", "closed")
    assert value("upstream_circuit_breaker_state", upstream="prices") == 0


def test_several_workers_share_an_emptied_metrics_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv(metrics.MULTIPROC_DIR, str(tmp_path))
    metrics.prepare_multiprocess_dir(Settings(_env_file=None, workers=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_one_worker_needs_no_metrics_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_DIR, raising=False)
    metrics.prepare_multiprocess_dir(Settings(_env_file=None, workers=1))
    assert metrics.MULTIPROC_DIR not in os.environ


def test_several_workers_get_a_directory_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_DIR, raising=False)
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(tmp_path))
    metrics.prepare_multiprocess_dir(Settings(_env_file=None, workers=2, port=9123))
    directory = Path(os.environ.pop(metrics.MULTIPROC_DIR))
    assert directory.parent == tmp_path and directory.name.endswith("-metrics-9123")


def other_series(metrics_text: str) -> list[str]:
    """The request-count lines of /metrics whose method is not a standard one."""
    return [
        line
        for line in metrics_text.splitlines()
        if line.startswith("http_requests_total{")
        and not any(f'method="{known}"' in line for known in metrics.KNOWN_METHODS)
    ]


def test_invented_methods_are_counted_as_one_series(client: TestClient) -> None:
    before = other_series(client.get("/metrics").text)
    for method in INVENTED_METHODS:
        client.request(method, "/health/nowhere")
    after = other_series(client.get("/metrics").text)
    [series] = [line for line in after if 'handler="none"' in line]
    assert 'method="other"' in series and 'status="4xx"' in series
    assert len(after) <= len(before) + 1  # this one, if an earlier test did not make it
    assert not any("INVENTED" in line for line in after)


def test_invented_methods_share_one_cache_entry() -> None:
    """The middleware's cache of metric children is keyed after the folding: 300 methods, one
    entry, however many a scanner invents."""

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    settings = Settings(_env_file=None)
    middleware = ObservabilityMiddleware(answer, tracing=Tracing(settings), settings=settings)
    client = TestClient(middleware)  # requests only: no lifespan, which `answer` lacks
    for method in INVENTED_METHODS:
        client.request(method, "/anything")
    assert list(middleware.metrics.children) == [("other", metrics.UNMATCHED_ROUTE, 2)]


# One worker, for the test below: sets its breaker gauge, says so, stops when told (stdin).
WORKER = """
import sys
from fastapi.testclient import TestClient
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.observability.metrics import record_breaker_state
from {{ cookiecutter.package_name }}.settings import Settings

with TestClient(create_app(Settings(_env_file=None, rate_limit_storage_uri="memory://"))):
    record_breaker_state("prices", "open")
    print("open", flush=True)
    sys.stdin.readline()
"""


def breaker_states(directory: Path) -> list[float]:
    """The breaker gauge as any worker's /metrics shows it: the workers' files added up."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return [
        sample.value
        for family in registry.collect()
        if family.name == "upstream_circuit_breaker_state"
        for sample in family.samples
    ]


def test_a_worker_that_stops_no_longer_counts_in_the_live_gauges(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"  # of its own: the test's SQLite file is in tmp_path
    shared.mkdir()
    env = {**os.environ, metrics.MULTIPROC_DIR: str(shared)}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdin is not None and worker.stdout is not None
    try:
        assert "open\n" in iter(worker.stdout.readline, "")  # after its log lines
        assert breaker_states(shared) == [2.0]  # while it runs, its open breaker counts
        worker.stdin.write("stop\n")
        worker.stdin.flush()
        assert worker.wait(timeout=60) == 0  # through the lifespan's shutdown
    finally:
        worker.kill()
    assert breaker_states(shared) == []


@pytest.fixture
def without_shared_metrics(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(metrics.MULTIPROC_DIR, raising=False)
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)
    return monkeypatch


def production_app() -> FastAPI:
    return create_app(Settings(_env_file=None, **production_settings()))


def test_a_uvicorn_worker_without_a_metrics_directory_refuses_to_start(
    without_shared_metrics: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = multiprocessing.current_process()  # any process: it stands for the supervisor
    without_shared_metrics.setattr(multiprocessing, "parent_process", lambda: parent)
    with pytest.raises(RuntimeError, match="without PROMETHEUS_MULTIPROC_DIR"):
        with TestClient(production_app()):
            pass
    [line] = [line for line in capsys.readouterr().out.splitlines() if "ERROR: " in line]
    assert "uvicorn --workers" in line
    assert "python -m {{ cookiecutter.package_name }}" in line


def test_a_gunicorn_worker_without_a_metrics_directory_refuses_to_start(
    without_shared_metrics: pytest.MonkeyPatch,
) -> None:
    without_shared_metrics.setenv("SERVER_SOFTWARE", "gunicorn/23.0.0")
    with pytest.raises(RuntimeError, match="worker by gunicorn without PROMETHEUS_MULTIPROC"):
        with TestClient(production_app()):
            pass


def test_a_worker_with_a_metrics_directory_starts(
    without_shared_metrics: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_shared_metrics.setenv("SERVER_SOFTWARE", "gunicorn/23.0.0")
    without_shared_metrics.setenv(metrics.MULTIPROC_DIR, str(tmp_path))
    with TestClient(production_app()) as client:
        assert client.get("/health/live").status_code == 200


def test_development_and_a_single_process_start_without_one(
    without_shared_metrics: pytest.MonkeyPatch,
) -> None:
    """`make run` serves with reload: its server is a spawned child too."""
    with TestClient(production_app()) as client:  # no supervisor: python -m, one worker
        assert client.get("/health/live").status_code == 200
    parent = multiprocessing.current_process()
    without_shared_metrics.setattr(multiprocessing, "parent_process", lambda: parent)
    with TestClient(create_app(Settings(_env_file=None))) as client:
        assert client.get("/health/live").status_code == 200
