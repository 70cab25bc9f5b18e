"""Metrics that must stay right whatever the clients send and however the workers start: label
values bounded, a stopped worker's gauges gone, no worker counting alone unnoticed."""

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.observability import metrics
from {{ cookiecutter.package_name }}.observability.middleware import ObservabilityMiddleware
from {{ cookiecutter.package_name }}.observability.tracing import Tracing
from {{ cookiecutter.package_name }}.settings import Settings

from .conftest import production_settings

INVENTED_METHODS = [f"INVENTED{number}" for number in range(300)]


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
